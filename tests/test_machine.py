"""What a benchmark or a training log records as the machine's CPU."""

import builtins
import io

from nerelproc import machine


def test_cpu_model_reads_the_model_name(monkeypatch):
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n"
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(cpuinfo) if path == "/proc/cpuinfo"
                        else real_open(path, *a, **k))
    assert machine.cpu_model() == "AMD EPYC 9R14"


def test_cpu_model_without_cpuinfo_falls_back_to_platform(monkeypatch):
    def missing(path, *args, **kwargs):
        raise FileNotFoundError(path)
    monkeypatch.setattr(builtins, "open", missing)
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "aarch64")
    assert machine.cpu_model() == "aarch64"
