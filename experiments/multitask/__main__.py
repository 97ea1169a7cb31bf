from experiments.multitask.cli import main

main(prog_name="python -m experiments.multitask")
