"""Unit tests of the audit building blocks: SDDL/binary descriptors, path resolution, the live-registry source."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svchunt.audit import sddl
from svchunt.audit.checks_acl import check_hidden, check_weak
from svchunt.audit.checks_masquerade import edit_distance_le1
from svchunt.audit.hive import LiveSource
from svchunt.audit.inventory import ServiceEntry, read_inventory
from svchunt.audit.paths import resolve

HIDDEN = "D:(D;;DCLCWPDTSD;;;IU)(D;;DCLCWPDTSD;;;SU)(D;;DCLCWPDTSD;;;BA)(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWRPWPDTLOCRRC;;;SY)"


def _entry(text: str) -> ServiceEntry:
    entry = ServiceEntry("ControlSet001", "S", "ControlSet001\\Services\\S", None)
    entry.security = sddl.parse_sddl(text)
    entry.sddl = text
    return entry


def test_sddl_binary_round_trip() -> None:
    sd = sddl.parse_sddl("O:SYG:SY" + HIDDEN + "S:(AU;FA;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)")
    again = sddl.parse_binary(sddl.to_binary(sd))
    assert again.dacl == sd.dacl and again.owner == sd.owner and again.sacl == sd.sacl


def test_hidden_by_hex_mask_and_sid_is_same_as_letters() -> None:
    assert check_hidden(_entry("D:(D;;0x4;;;S-1-5-32-544)(A;;GA;;;BA)"))
    assert check_hidden(_entry("D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)"))  # allow-only-SYSTEM variant
    assert not check_hidden(_entry("D:(A;;CCLCSWLOCRRC;;;IU)(A;;GA;;;BA)(A;;GA;;;SY)"))


def test_deny_after_allow_does_not_hide() -> None:
    # AccessCheck grants LC from the first ACE; the later deny does not remove it, but the explicit deny is reported.
    text = "D:(A;;GA;;;BA)(D;;LC;;;BA)"
    assert sddl.effective_access(sddl.parse_sddl(text), {sddl.SID_ALIASES["BA"]}) & sddl.SERVICE_QUERY_STATUS


def test_weak_generic_write_and_null_dacl() -> None:
    [f] = [x for x in check_weak(_entry("D:(A;;GW;;;BU)(A;;GA;;;BA)")) if x.severity == "high"]
    assert "BU" in f.extra["principals"]
    [null] = check_weak(_entry("D:NO_ACCESS_CONTROL"))
    assert null.severity == "critical"
    assert not check_weak(_entry("D:(A;;GA;;;BA)(A;;GA;;;SY)(A;;CCLCSWLOCRRC;;;IU)"))


def test_sddl_errors_are_clear() -> None:
    with pytest.raises(sddl.SecurityDescriptorError, match="unknown right"):
        sddl.parse_sddl("D:(A;;ZZ;;;BA)")
    with pytest.raises(sddl.SecurityDescriptorError, match="shorter"):
        sddl.parse_binary(b"\x01\x00")


@given(st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(0, 0xF01FF), st.sampled_from(list(sddl.SID_ALIASES))),
                max_size=8))
def test_binary_round_trip_property(aces: list) -> None:
    sd = sddl.SecurityDescriptor(dacl=[sddl.Ace(t, 0, m, sddl.SID_ALIASES[s]) for t, m, s in aces])
    assert sddl.parse_binary(sddl.to_binary(sd)).dacl == sd.dacl
    assert sddl.parse_sddl(sd.to_sddl()).dacl == sd.dacl


@pytest.mark.parametrize(
    ("raw", "driver", "path", "location"),
    [
        ("\\SystemRoot\\System32\\drivers\\x.sys", True, "C:\\Windows\\System32\\drivers\\x.sys", "system"),
        ("System32\\DRIVERS\\x.sys", True, "C:\\Windows\\System32\\DRIVERS\\x.sys", "system"),
        ("\\??\\C:\\Temp\\x.sys", True, "C:\\Temp\\x.sys", "user-writable"),
        ("\\??\\UNC\\srv\\share\\x.sys", True, "\\\\srv\\share\\x.sys", "network"),
        ('"C:\\Program Files\\A B\\s.exe" -k', False, "C:\\Program Files\\A B\\s.exe", "program-files"),
        ("%SystemRoot%\\system32\\svchost.exe -k netsvcs", False, "C:\\Windows\\system32\\svchost.exe", "system"),
        ("\\Windows\\Temp\\masky.exe", False, "C:\\Windows\\Temp\\masky.exe", "user-writable"),
        ("C:\\Windows\\PSEXESVC.exe", False, "C:\\Windows\\PSEXESVC.exe", "windows-root"),
        ("C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\1\\MsMpEng.exe", False,
         "C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\1\\MsMpEng.exe", "program-files"),
    ],
)
def test_resolve(raw: str, driver: bool, path: str, location: str) -> None:
    resolved = resolve(raw, is_driver=driver)
    assert (resolved.path, resolved.location) == (path, location)


def test_driver_without_image_path_defaults_to_drivers_folder() -> None:
    assert resolve(None, is_driver=True, service_name="beep").path == "C:\\Windows\\System32\\drivers\\beep.sys"


def test_edit_distance() -> None:
    assert edit_distance_le1("spooler", "spoo1er") and edit_distance_le1("spooler", "sploer") is False
    assert edit_distance_le1("wuauserv", "wuasuerx") is False and edit_distance_le1("lanman", "lanmna")


class FakeKey:
    def __init__(self, node: dict) -> None:
        self.node = node

    def __enter__(self) -> FakeKey:
        return self

    def __exit__(self, *args: object) -> None:
        return None


class FakeWinreg:
    """Just enough of `winreg` over a nested dict: {"values": {...}, "keys": {...}}."""

    HKEY_LOCAL_MACHINE = object()
    KEY_READ = 0x20019

    def __init__(self, tree: dict) -> None:
        self.tree = tree

    def OpenKey(self, hive: object, path: str, reserved: int, access: int) -> FakeKey:  # noqa: N802
        node = self.tree
        for part in path.split("\\"):
            match = {k.lower(): v for k, v in node["keys"].items()}.get(part.lower())
            if match is None:
                raise FileNotFoundError(path)
            node = match
        return FakeKey(node)

    def QueryInfoKey(self, key: FakeKey) -> tuple[int, int, int]:  # noqa: N802
        return len(key.node["keys"]), len(key.node["values"]), 132024685204418789

    def EnumValue(self, key: FakeKey, index: int) -> tuple[str, object, int]:  # noqa: N802
        name, (value, kind) = list(key.node["values"].items())[index]
        return name, value, kind

    def EnumKey(self, key: FakeKey, index: int) -> str:  # noqa: N802
        return list(key.node["keys"])[index]


def _k(values: dict | None = None, keys: dict | None = None) -> dict:
    return {"values": values or {}, "keys": keys or {}}


def test_live_source_with_fake_winreg() -> None:
    hidden = sddl.to_binary(sddl.parse_sddl(HIDDEN))
    tree = _k(keys={"SYSTEM": _k(keys={
        "Select": _k({"Current": (1, 4)}),
        "ControlSet001": _k(keys={"Services": _k(keys={
            "Evil": _k({"ImagePath": ("C:\\Users\\Public\\e.exe", 2), "Type": (16, 4), "Start": (2, 4)},
                       {"Security": _k({"Security": (hidden, 3)})}),
        })}),
    })})
    source = LiveSource("SYSTEM", FakeWinreg(tree))
    sets, current, entries = read_inventory(source)
    assert sets == ["ControlSet001"] and current == "ControlSet001"
    [evil] = entries
    assert evil.image_path.location == "user-writable" and evil.last_write.startswith("2019-")
    assert check_hidden(evil)[0].extra["denied_to"].keys() == {"BA", "IU", "SU"}
