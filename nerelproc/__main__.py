from nerelproc.cli import main

main()
