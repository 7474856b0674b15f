"""Custom register classifications (--policy): accepted, applied, and refused."""
import json

import pytest

from conftest import IMAGES, ROOT, run_neve
from neve.el2 import policy
from neve.arch import sysregs
from neve.errors import BadInput


def write(tmp_path, text, name="p.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ('[registers]\nHCR_EL3 = "trap"\n', "unknown register 'HCR_EL3' (did you mean HCR_EL2?)"),
    ('[registers]\nHCR_EL2 = "deferred"\n', "unknown class 'deferred'"),
    ('[registers]\nSCTLR_EL2 = "memory"\n', "SCTLR_EL2: impossible class 'memory'"),
    ('[registers]\nVBAR_EL2 = "memory"\n', "VBAR_EL2: impossible class 'memory'"),
    ('[registers]\nHCR_EL2 = "redirect"\n', "HCR_EL2: impossible class 'redirect'"),
    ('[registers]\nTPIDR_EL1 = "trap"\n', "TPIDR_EL1: impossible class 'trap'"),
    ('[registers]\nCurrentEL = "memory"\n', "CurrentEL: not a register"),
    ('[registers]\nSCTLR_EL12 = "trap"\n', "SCTLR_EL12: _EL12/_EL02 encodings are UNDEFINED"),
    ('base = "v9"\n', "base 'v9' must be one of"),
    ('registers = 3\n', "[registers] must be a table"),
    ('bogus = 1\n', "unknown key 'bogus'"),
    ('[registers\n', "not valid TOML"),
])
def test_invalid_policies_are_refused(tmp_path, text, message):
    with pytest.raises(BadInput) as e:
        policy.load(write(tmp_path, text))
    assert message in e.value.message


def test_cli_refuses_invalid_policy_with_one_line(tmp_path):
    p = write(tmp_path, '[registers]\nSCTLR_EL2 = "memory"\n')
    r = run_neve("run", "--policy", p, IMAGES / "kvmlike.elf", text=True)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neve: policy ") and "Traceback" not in r.stderr


def test_policy_access_overrides_base():
    pol = policy.Policy("t", "nv2", {"CPTR_EL2": "redirect"})
    assert pol.access(sysregs.BY_NAME["CPTR_EL2"], True) == "redirect"
    assert pol.access(sysregs.BY_NAME["HCR_EL2"], True) == sysregs.vel2_access("HCR_EL2", True, "nv2")


def run_stats(tmp_path, *args):
    out = tmp_path / "s.json"
    r = run_neve("run", "--stats", out, *args, IMAGES / "kvmlike.elf", IMAGES / "hypercall.elf")
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def test_policy_changes_counts_not_behaviour(tmp_path):
    base, out_base = run_stats(tmp_path, "--mode", "neve")
    p = write(tmp_path, 'base = "neve"\n[registers]\nICH_VTR_EL2 = "memory"\nCPTR_EL2 = "trap"\n'
                        'HCR_EL2 = "trap"\n')
    pol, out_pol = run_stats(tmp_path, "--policy", str(p))
    assert out_pol == out_base                    # the guest sees the same thing
    assert pol["policy"]["overrides"] == {"CPTR_EL2": "trap", "HCR_EL2": "trap", "ICH_VTR_EL2": "memory"}
    b = base["hypercalls"]["median_call"]["by_register"]
    q = pol["hypercalls"]["median_call"]["by_register"]
    assert "ICH_VTR_EL2:r" in b and "ICH_VTR_EL2:r" not in q
    # HCR_EL2 is accessed 4 times for reading and 4 for writing per round trip.
    assert q["HCR_EL2:r"] == 4 and q["HCR_EL2:w"] == 4 and "HCR_EL2:r" not in b
    assert pol["hypercalls"]["traps_per_call"]["median"] == base["hypercalls"]["traps_per_call"]["median"] - 1 + 8


def test_example_policy_is_valid():
    pol = policy.load(ROOT / "examples" / "policy-vtr-in-page.toml")
    assert pol.base == "neve" and pol.overrides == {"ICH_VTR_EL2": "mem"}
