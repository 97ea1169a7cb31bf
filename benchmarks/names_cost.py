"""What the normal forms and groups cost ``nerelproc annotate``: CPU seconds (user + sys of the
child process, ``resource.getrusage``) of the same command with names and with ``--no-names``,
the two alternating, ``--rounds`` times each. CPU seconds rather than wall time: other work on
the machine blurs them less. Writes benchmarks/names_cost.json.

    python benchmarks/names_cost.py --rounds 2
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"


def cpu_seconds(command):
    """User + sys CPU seconds of ``command`` (run to its end)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "names_cost.json"))
    args = parser.parse_args()
    runs = {"names": [], "no_names": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for mode, extra in (("names", []), ("no_names", ["--no-names"])):
                command = [sys.executable, "-m", "nerelproc", "annotate", args.input, "-o",
                           str(Path(folder) / f"{mode}.jsonl"), "--threads", str(args.threads), "--quiet", *extra]
                runs[mode].append(round(cpu_seconds(command), 2))
                print(mode, runs[mode][-1], flush=True)
    mean = {mode: round(sum(values) / len(values), 2) for mode, values in runs.items()}
    result = {
        "command": f"nerelproc annotate {Path(args.input).name} -o OUT --threads {args.threads} --quiet [--no-names]",
        "cpu_seconds": runs, "mean_cpu_seconds": mean,
        "names_cost": round(mean["names"] / mean["no_names"] - 1, 4),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"names: {mean['names']} CPU s, --no-names: {mean['no_names']} CPU s, "
          f"cost {result['names_cost']:+.1%} -> {args.output}")


if __name__ == "__main__":
    main()
