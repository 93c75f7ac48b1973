"""The CPU a bench script ran on, for its table's first line (issue 22: ratios differ between
vendors and generations, and a virtual machine's `model name` says only "AMD EPYC" for Zen 4
and Zen 5 alike, so the family and model numbers go with it). `genlab bench` writes the same
into its JSON (`genlab::bench::cpu`)."""
import platform


def describe():
    """`model name (family F model M)` of the first processor in /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    info = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in first.splitlines() if ":" in l)}
    name = info.get("model name", platform.processor())
    return f"{name} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"
