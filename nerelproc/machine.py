"""The machine a figure was measured on: what benchmarks, training logs and manifests record."""

import platform


def cpu_model():
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"), from /proc/cpuinfo where
    there is one; else what ``platform`` knows (often only "x86_64")."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.lower().startswith(("model name", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
