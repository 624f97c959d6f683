"""macOS branches of preflight, fed with the real output formats of sysctl, pmset and vm_stat."""

import pytest

from conftest import FIXTURES
from farense_guide import macos
from farense_guide.steps import preflight

OUTPUTS = {
    ("sysctl",): "sysctl.txt",
    ("vm_stat",): "vm_stat.txt",
    ("pmset", "-g", "batt"): "pmset_batt_battery.txt",
    ("pmset", "-g"): "pmset_g.txt",
}


def fixture(name):
    return (FIXTURES / "macos" / name).read_text()


def test_sysctl():
    values = macos.parse_sysctl(fixture("sysctl.txt"))
    assert values["machdep.cpu.brand_string"] == "Apple M1"
    assert values["hw.memsize"] == "17179869184"


def test_vm_stat_uses_the_reported_page_size():
    counts = macos.parse_vm_stat(fixture("vm_stat.txt"))
    assert counts["free"] == 8462 * 16384
    assert counts["wired_down"] == 130867 * 16384
    assert macos.available_from_vm_stat(counts) == (8462 + 249120 + 5317) * 16384


@pytest.mark.parametrize("name, source", [("pmset_batt_ac.txt", "AC Power"), ("pmset_batt_battery.txt", "Battery Power")])
def test_pmset_power_source(name, source):
    assert macos.parse_pmset_batt(fixture(name)) == source


def test_low_power_mode():
    assert macos.parse_low_power_mode(fixture("pmset_g.txt")) is True
    assert macos.parse_low_power_mode(fixture("pmset_g.txt").replace("lowpowermode         1", "lowpowermode         0")) is False
    assert macos.parse_low_power_mode("System-wide power settings:\n sleep 1\n") is None


@pytest.fixture
def fake_mac(monkeypatch):
    def run(command):
        key = tuple(command[:3]) if command[0] == "pmset" else (command[0],)
        return fixture(OUTPUTS[key])

    monkeypatch.setattr(macos, "run", run)


def test_read_macos_from_real_outputs(fake_mac):
    mac = macos.read_macos()
    assert mac["chip"] == "Apple M1" and mac["model"] == "MacBookAir10,1"
    assert mac["memory_total"] == 17179869184
    assert mac["power_source"] == "Battery Power" and mac["low_power_mode"] is True


def test_preflight_on_a_mac_on_battery_warns(fake_mac):
    from farense_guide.config import load_profile

    report = preflight.run_preflight(load_profile("tiny"), system="Darwin")
    checks = {c["key"]: c for c in report["checks"]}
    assert checks["power"]["status"] == "aviso" and "carregador" in checks["power"]["hint"]
    assert checks["low_power_mode"]["status"] == "aviso"
    assert "Apple M1" in checks["system"]["value"]
    assert report["memory_total"] == 17179869184
    assert "blas" not in checks  # BLAS is a Linux matter
    assert "power" not in report["blocking"]  # warnings do not block


def test_intel_mac_and_rosetta_are_blocking():
    assert preflight.check_system("Darwin", {"chip": "Intel(R) Core(TM) i7"}, "x86_64").status == "erro"
    rosetta = preflight.check_system("Darwin", {"chip": "Apple M1"}, "x86_64")
    assert rosetta.status == "erro" and "Rosetta" in rosetta.hint
    assert preflight.check_system("Darwin", {"chip": "Apple M1"}, "arm64").status == "ok"


def test_a_run_on_a_mac_records_its_chip_and_memory(fake_mac, monkeypatch):
    from farense_guide import machine

    monkeypatch.setattr(machine.platform, "system", lambda: "Darwin")
    described = machine.describe_machine()
    assert described["system"] == "Darwin" and described["processor"] == "Apple M1"
    assert described["memory_gb"] == 17.2
    assert machine.read_memory("Darwin", macos.read_macos()) == (17179869184, (8462 + 249120 + 5317) * 16384)
