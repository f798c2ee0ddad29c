"""The check of an RPM's requirements against what EL9 + EPEL 9 + oVirt
4.5 provide (tests/el9repos.py) tells an unmet one: on synthetic lists,
as the built package's own (tests/test_rpm.py) are met."""

from . import el9repos


def test_the_old_pyroute2_floor_is_unmet():
    """setup.cfg's former ``pyroute2>=0.7``, as EL9's generator writes it:
    EPEL 9 has 0.5.14, oVirt 4.5 0.6.6."""
    unmet = el9repos.unmet(["vdsm", "python3.9dist(pyroute2) >= 0.7"])
    assert [req for req, _ in unmet] == ["python3.9dist(pyroute2) >= 0.7"]
    assert "0.5.14 (EPEL 9)" in unmet[0][1] and "0.6.6" in unmet[0][1]


def test_the_floor_and_an_unknown_package():
    assert el9repos.unmet(["python3.9dist(pyroute2) >= 0.5.14",
                           "python3-pyroute2", "busybox", "umoci"]) == []
    unmet = el9repos.unmet(["nosuchpackage", "vdsm >= 4.60",
                            "rpmlib(Future) <= 9.0-1"])
    assert [req for req, _ in unmet] == ["nosuchpackage", "vdsm >= 4.60",
                                         "rpmlib(Future) <= 9.0-1"]
    assert "no EL9, EPEL 9 or oVirt 4.5 package provides nosuchpackage" \
        == unmet[0][1]


def test_build_python_names_become_el9s():
    assert el9repos.el9_requirement("python3.11dist(pyroute2) >= 0.5.14",
                                    "3.11") == \
        "python3.9dist(pyroute2) >= 0.5.14"
    assert el9repos.el9_requirement("python(abi) = 3.11", "3.11") == \
        "python(abi) = 3.9"
    # Another Python's names stay as they are, and then fail.
    assert el9repos.unmet([el9repos.el9_requirement(
        "python(abi) = 3.12", "3.11")]) != []


def test_vercmp_orders_as_rpm():
    assert el9repos.vercmp("0.5.14", "0.7") < 0
    assert el9repos.vercmp("0.10", "0.9") > 0
    assert el9repos.vercmp("4.50.5.1", "4.50") > 0
    assert el9repos.vercmp("1:2.1.12-1.el9", "2.1.12") == 0


def test_every_row_says_where_it_comes_from():
    for name, rows in el9repos.PROVIDES.items():
        for version, repo, source in rows:
            assert version and repo and source, name
