"""VmStats' CPU figures computed as lib/vdsm/virt/vmstats.py ``cpu`` does
from libvirt's bulk stats (cpu.user, cpu.system, cpu.time)."""

from vdsm_container.stats import vmstats
from vdsm_container.stats.cgroups import Sample


def sample(t, usage, user, system):
    return Sample(timestamp=t, cpu_usage_ns=usage, cpu_user_ns=user,
                  cpu_system_ns=system)


def test_cpu_sys_is_user_plus_system_as_in_vdsm():
    first = sample(10.0, 0, 0, 0)
    last = sample(12.0, 3 * 10**9, 10**9, 5 * 10**8)
    stats = vmstats.cpu(first, last)
    # vdsm: cpuSys = 100 * ((user + system) delta) / interval
    assert stats["cpuSys"] == "75.00"
    # cpuUser = 100 * (cpu.time delta - cpuSys's time) / interval
    assert stats["cpuUser"] == "75.00"
    assert stats["cpuUsage"] == str(15 * 10**8)
    assert stats["cpuActual"] is True


def test_cpu_user_never_negative():
    # user + system ticks may run ahead of the precise total.
    first = sample(0.0, 0, 0, 0)
    last = sample(1.0, 10**9, 10**9, 10**8)
    stats = vmstats.cpu(first, last)
    assert stats["cpuUser"] == "0.00"
    assert stats["cpuSys"] == "110.00"


def test_one_sample_is_not_actual():
    stats = vmstats.cpu(None, sample(1.0, 5, 2, 1))
    assert stats["cpuActual"] is False and stats["cpuUsage"] == "3"
