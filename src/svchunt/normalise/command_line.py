"""Service operations in a command line or PowerShell text, parsed once so rules never regex-guess.

One parser for every way a service is created, changed, started or hidden from a prompt:

- `sc.exe [\\\\host] <verb> <service> [option= value ...]` (any case, `sc` or `sc.exe`, quoted or not,
  odd spacing, `binPath= x` as well as `binPath=x`);
- PowerShell cmdlets `New-Service`, `Set-Service`, `Remove-Service`, `Start-/Stop-/Restart-Service`
  (named, abbreviated and positional parameters, `Get-Service X | Set-Service ...` pipelines);
- registry writes under `...\\Services\\<name>`: `reg add|delete`, `Set-ItemProperty`/`New-ItemProperty`/`sp`,
  `New-Item`, `Remove-Item`;
- WMI/CIM `Win32_Service` methods (`wmic service ... call`, `Invoke-CimMethod`, `Invoke-WmiMethod`, `.Create(`,
  `.Change(`, `.ChangeStartMode(`), and `net start|stop`.

The result is a list of `ServiceOp` (one per operation; a script block may hold several). `derived.py` turns
it into event fields (`ServiceCommand*`). Pure string work plus a few precompiled regexes; callers only hand
text here for programs that can change services (see `PROGRAMS`) and for PowerShell logs.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Executables (lower-case file name) whose own command line is parsed, and how.
PROGRAMS = {
    "sc.exe": "sc",
    "sc": "sc",
    "reg.exe": "reg",
    "reg": "reg",
    "wmic.exe": "wmic",
    "wmic": "wmic",
    "net.exe": "net",
    "net": "net",
    "net1.exe": "net",
    "net1": "net",
    "powershell.exe": "powershell",
    "powershell_ise.exe": "powershell",
    "pwsh.exe": "powershell",
}
# Sysmon OriginalFileName (lower-case) of the same programs: renamed copies keep it.
ORIGINAL_NAMES = {
    "sc.exe": "sc",
    "reg.exe": "reg",
    "wmic.exe": "wmic",
    "net.exe": "net",
    "net1.exe": "net",
    "powershell.exe": "powershell",
    "pwsh.dll": "powershell",
}

START_TYPES = {
    # sc start= values, PowerShell StartupType names, WMI StartMode names, registry Start DWORDs
    "boot": "boot", "system": "system", "auto": "auto", "automatic": "auto", "delayed-auto": "delayed-auto",
    "automaticdelayedstart": "delayed-auto", "demand": "demand", "manual": "demand", "disabled": "disabled",
    "0": "boot", "1": "system", "2": "auto", "3": "demand", "4": "disabled",
    "0x0": "boot", "0x1": "system", "0x2": "auto", "0x3": "demand", "0x4": "disabled",
}  # fmt: skip

# sc verbs that change a service, and the ones that run it; queries (query, qc, sdshow ...) are not operations.
SC_VERBS = {
    "create": "create", "config": "config", "failure": "failure", "failureflag": "failure", "sdset": "sdset",
    "delete": "delete", "description": "description", "privs": "config", "sidtype": "config",
    "triggerinfo": "config", "managedaccount": "config", "preferrednode": "config", "start": "start",
    "stop": "stop", "pause": "stop", "control": "control",
}  # fmt: skip
_SC_OPTIONS = (
    "type", "start", "error", "binpath", "group", "tag", "depend", "obj", "displayname", "password",
    "reset", "reboot", "command", "actions",
)  # fmt: skip


@dataclass(slots=True)
class ServiceOp:
    tool: str  # sc | powershell | wmi | reg | net
    verb: str  # create | config | failure | sdset | delete | description | start | stop | control | set-value ...
    service: str | None = None
    host: str | None = None  # remote computer, without the leading backslashes
    bin_path: str | None = None  # binPath / BinaryPathName / PathName / ImagePath or ServiceDll data
    start_type: str | None = None  # one of START_TYPES' values
    failure_command: str | None = None
    failure_actions: str | None = None
    sddl: str | None = None
    reg_value: str | None = None  # value name written under ...\Services\<service>[\...]
    reg_data: str | None = None
    account: str | None = None  # obj= / Credential / StartName


# ------------------------------------------------------------------ tokens


def split_statements(text: str, powershell: bool) -> list[str]:
    """Split at unquoted `&`, `|`, newlines (and `;` in PowerShell), keeping quoted text whole.

    A `|` stays inside the statement list as its own piece marker so pipelines can be followed: the
    caller gets pieces in order and a `|` piece between pipeline elements.
    """
    out: list[str] = []
    buf: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < n and text[i + 1] == '"' and not powershell:
                buf.append('"')
                i += 1
            i += 1
            continue
        if ch == '"' or (ch == "'" and powershell):
            quote = ch
            buf.append(ch)
        elif ch == "^" and not powershell and i + 1 < n:  # cmd escape: next character is literal
            buf.append(text[i + 1])
            i += 1
        elif ch in "&\n\r" or (ch == ";" and powershell):
            out.append("".join(buf))
            buf = []
        elif ch == "|":
            out.append("".join(buf))
            out.append("|")
            buf = []
            if i + 1 < n and text[i + 1] == "|":
                i += 1
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return [s for s in (p.strip() for p in out) if s]


def split_args(text: str, powershell: bool = False) -> list[str]:
    """Whitespace-separated arguments with quotes removed (`"a b"`, `'a b'` in PowerShell, `\\"` inside)."""
    args: list[str] = []
    buf: list[str] = []
    quote = ""
    started = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == quote:
                if quote == "'" and i + 1 < n and text[i + 1] == "'":  # '' is a literal quote in PowerShell
                    buf.append("'")
                    i += 1
                else:
                    quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < n and text[i + 1] == '"':
                buf.append('"')
                i += 1
            elif ch == "`" and powershell and i + 1 < n:
                buf.append(text[i + 1])
                i += 1
            else:
                buf.append(ch)
        elif ch.isspace():
            if started:
                args.append("".join(buf))
                buf, started = [], False
        elif ch == "\\" and not powershell and i + 1 < n and text[i + 1] == '"':
            buf.append('"')  # CommandLineToArgvW: \" is a literal quote
            started = True
            i += 1
        elif ch == '"' or (ch == "'" and powershell):
            quote, started = ch, True
        elif ch == "`" and powershell and i + 1 < n:
            buf.append(text[i + 1])
            started = True
            i += 1
        else:
            buf.append(ch)
            started = True
        i += 1
    if started:
        args.append("".join(buf))
    return args


def _basename(token: str) -> str:
    return token.replace("/", "\\").rpartition("\\")[2].lower()


def _program(token: str) -> str | None:
    """The tool a command token invokes (`sc`, `C:\\Windows\\System32\\sc.exe`, `REG.EXE` ...)."""
    return PROGRAMS.get(_basename(token))


# ------------------------------------------------------------------ sc.exe


def parse_sc(args: list[str]) -> ServiceOp | None:
    """`[\\\\host] verb service [options]` (the arguments after the program)."""
    host = None
    if args and args[0].startswith("\\\\"):
        host = args[0].lstrip("\\") or None
        args = args[1:]
    if not args:
        return None
    verb = SC_VERBS.get(args[0].lower())
    if verb is None:
        return None
    op = ServiceOp("sc", verb, service=args[1] if len(args) > 1 else None, host=host)
    rest = args[2:]
    if verb == "sdset":
        op.sddl = " ".join(rest) or None
        return op
    options = _sc_options(rest)
    op.bin_path = options.get("binpath")
    start = options.get("start")
    if start is not None:
        op.start_type = START_TYPES.get(start.lower(), start.lower())
    op.account = options.get("obj")
    op.failure_command = options.get("command")
    op.failure_actions = options.get("actions")
    return op


def _sc_options(tokens: list[str]) -> dict[str, str]:
    """`key= value` pairs, also written `key=value` or `key =value` (seen in real logs)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        key, eq, value = token.partition("=")
        low = key.strip().lower()
        if not eq and i + 1 < len(tokens) and tokens[i + 1].startswith("=") and low in _SC_OPTIONS:
            eq, value = "=", tokens[i + 1][1:]  # `binPath =value` / `binPath = value`
            i += 1
        if eq and low in _SC_OPTIONS:
            if value == "" and i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            out.setdefault(low, value)
        i += 1
    return out


# ------------------------------------------------------------------ registry

# ...\Services\<name>[\sub\keys] in any hive spelling: HKLM\, HKLM:\, HKEY_LOCAL_MACHINE\, Registry::..., \\host\HKLM\...
_SERVICES_KEY = re.compile(
    r"(?i)^(?:\\\\(?P<host>[^\\]+)\\)?(?:registry::)?(?:hklm:?|hkey_local_machine)\\system\\"
    r"(?:currentcontrolset|controlset\d{3})\\services\\(?P<service>[^\\]+)(?P<sub>(?:\\[^\\]+)*?)\\?$"
)


def _services_key(path: str) -> tuple[str | None, str, str] | None:
    """(host, service, sub key) of a registry path under ...\\Services, else None."""
    m = _SERVICES_KEY.match(path.strip().strip("\"'"))
    if m is None:
        return None
    return m.group("host"), m.group("service"), m.group("sub").lstrip("\\")


def _registry_op(tool: str, verb: str, path: str, value: str | None, data: str | None) -> ServiceOp | None:
    found = _services_key(path)
    if found is None:
        return None
    host, service, sub = found
    name = value if value is not None else "(Default)"
    op = ServiceOp(tool, verb, service=service, host=host, reg_value=f"{sub}\\{name}" if sub else name, reg_data=data)
    low = name.lower()
    if verb == "set-value" and data is not None:
        if low in ("imagepath", "servicedll"):
            op.bin_path = data
        elif low == "start":
            op.start_type = START_TYPES.get(data.strip().lower())
        elif low == "failurecommand":
            op.failure_command = data
        elif low == "objectname":
            op.account = data
        elif low == "security" and sub.lower() == "security":
            op.sddl = _binary_sd_to_sddl(data)
    return op


def _binary_sd_to_sddl(data: str) -> str | None:
    """`reg add ...\\Security /v Security /t REG_BINARY /d 0100...` -> the SDDL of that descriptor."""
    from svchunt.audit.sddl import SecurityDescriptorError, parse_binary

    try:
        return parse_binary(bytes.fromhex(data.strip().replace(",", ""))).to_sddl()
    except (ValueError, SecurityDescriptorError):
        return None


def parse_reg(args: list[str]) -> ServiceOp | None:
    """`reg add|delete KEY [/v name | /ve] [/t type] [/d data] [/f]`."""
    if len(args) < 2 or args[0].lower() not in ("add", "delete"):
        return None
    switches = _switches(args[2:], ("/v", "/t", "/d", "/s", "/se"))
    value = switches.get("/v")
    if value is None and "/ve" in (a.lower() for a in args[2:]):
        value = "(Default)"
    if args[0].lower() == "add":
        return _registry_op("reg", "set-value", args[1], value, switches.get("/d"))
    return _registry_op("reg", "delete-value" if value is not None else "delete-key", args[1], value, None)


def _switches(tokens: list[str], with_value: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        low = tokens[i].lower()
        if low in with_value and i + 1 < len(tokens):
            out.setdefault(low, tokens[i + 1])
            i += 1
        i += 1
    return out


# ------------------------------------------------------------------ net / wmic


def parse_net(args: list[str]) -> ServiceOp | None:
    if len(args) < 2 or args[0].lower() not in ("start", "stop"):
        return None
    return ServiceOp("net", args[0].lower(), service=" ".join(args[1:]).strip() or None)


_WMI_METHODS = {
    "create": "create", "change": "config", "changestartmode": "config", "startservice": "start",
    "stopservice": "stop", "delete": "delete", "pauseservice": "stop", "usercontrolservice": "control",
}  # fmt: skip
_WMI_NAME = re.compile(r"""(?i)\bname\s*=\s*\\?["']?([^"'\s,)\\]+)""")
_WMI_PATH = re.compile(r"""(?i)\bpathname\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_WMI_MODE = re.compile(r"""(?i)\bstartmode\s*=\s*["']?(\w+)""")
_WMI_NODE = re.compile(r"(?i)/node:\s*\"?([^\s\"]+)")


def parse_wmic(args: list[str], text: str) -> ServiceOp | None:
    """`wmic [/node:h] service [where ...] call <method> [args]`."""
    low = [a.lower() for a in args]
    if "service" not in low or "call" not in low:
        return None
    call = low.index("call")
    if call + 1 >= len(args):
        return None
    verb = _WMI_METHODS.get(low[call + 1])
    if verb is None:
        return None
    op = ServiceOp("wmi", verb)
    node = _WMI_NODE.search(text)
    op.host = node.group(1) if node else None
    name = _WMI_NAME.search(" ".join(args[low.index("service") + 1 : call]))
    op.service = name.group(1) if name else None
    call_args = _wmic_call_args(text)
    if low[call + 1] == "changestartmode" and call_args:
        op.start_type = START_TYPES.get(call_args[0].lower())
    path = _WMI_PATH.search(text)
    if path:
        op.bin_path = next(g for g in path.groups() if g is not None)
    elif verb == "create" and call_args:
        # Win32_Service.Create(Name, DisplayName, PathName, ...): wmic passes them in that order
        op.service = op.service or call_args[0]
        paths = [a for a in call_args[1:] if "\\" in a or a.lower().endswith(".exe")]
        op.bin_path = paths[0] if paths else None
    return op


_WMIC_CALL = re.compile(r"(?i)\bcall\s+\w+\s*(.*)$", re.S)
_WMIC_ARG = re.compile(r"\"([^\"]*)\"|'([^']*)'|([^,\s\"']+)")


def _wmic_call_args(text: str) -> list[str]:
    """Arguments after `call <method>`, comma and/or space separated, quotes removed."""
    m = _WMIC_CALL.search(text)
    if m is None:
        return []
    return [next(g for g in a.groups() if g is not None) for a in _WMIC_ARG.finditer(m.group(1))]


# ------------------------------------------------------------------ PowerShell

_CMDLET = re.compile(
    r"(?i)(?<![\w-])(new-service|set-service|remove-service|start-service|stop-service|restart-service|"
    r"suspend-service|sasv|spsv|set-itemproperty|new-itemproperty|sp|new-item|ni|remove-item|"
    r"remove-itemproperty|invoke-cimmethod|invoke-wmimethod)(?![\w-])"
)
_PS_VERBS = {
    "new-service": "create", "set-service": "config", "remove-service": "delete", "start-service": "start",
    "sasv": "start", "restart-service": "start", "stop-service": "stop", "spsv": "stop", "suspend-service": "stop",
}  # fmt: skip
# Parameters per cmdlet: canonical name -> accepted names (PowerShell also takes any unambiguous prefix).
_SERVICE_PARAMS = {
    "name": ("name", "servicename", "sn"),
    "binarypathname": ("binarypathname", "path"),
    "startuptype": ("startuptype", "startmode", "sm", "st", "starttype"),
    "securitydescriptorsddl": ("securitydescriptorsddl", "sd"),
    "credential": ("credential",),
    "displayname": ("displayname", "dn"),
    "status": ("status",),
    "description": ("description",),
    "computername": ("computername", "cn"),
    "inputobject": ("inputobject",),
    "dependson": ("dependson",),
    "force": ("force",),
}
_ITEM_PARAMS = {
    "path": ("path", "pspath", "literalpath", "lp"),
    "name": ("name",),
    "value": ("value",),
    "propertytype": ("propertytype", "type"),
    "itemtype": ("itemtype",),
    "force": ("force",),
}
_SWITCHES = {"force", "passthru", "whatif", "confirm", "recurse"}
_GET_SERVICE = re.compile(r"(?i)^(?:get-service|gsv)\s+(?:-name\s+)?[\"']?([^\"'\s]+)")


def _ps_params(tokens: list[str], spec: dict[str, tuple[str, ...]], positional: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and len(token) > 1 and not token[1].isdigit():
            name, colon, inline = token[1:].partition(":")
            canonical = _ps_param_name(name.lower(), spec)
            if canonical in _SWITCHES or canonical is None and name.lower() in _SWITCHES:
                i += 1
                continue
            if colon:
                value = inline
            elif i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            else:
                value = ""
            if canonical is not None:
                out.setdefault(canonical, value)
        elif pos < len(positional):
            out.setdefault(positional[pos], token)
            pos += 1
        i += 1
    return out


def _ps_param_name(name: str, spec: dict[str, tuple[str, ...]]) -> str | None:
    for canonical, names in spec.items():
        if name in names:
            return canonical
    matches = {c for c, names in spec.items() for full in names if full.startswith(name)}
    return matches.pop() if len(matches) == 1 else None


def _ps_service_op(cmdlet: str, tokens: list[str], piped_name: str | None) -> ServiceOp | None:
    verb = _PS_VERBS[cmdlet]
    params = _ps_params(tokens, _SERVICE_PARAMS, ("name", "binarypathname") if verb == "create" else ("name",))
    op = ServiceOp("powershell", verb, service=params.get("name") or params.get("displayname") or piped_name)
    op.host = params.get("computername")
    op.bin_path = params.get("binarypathname")
    if "startuptype" in params:
        op.start_type = START_TYPES.get(params["startuptype"].lower(), params["startuptype"].lower())
    op.sddl = params.get("securitydescriptorsddl")
    op.account = params.get("credential")
    status = params.get("status", "").lower()
    if verb == "config" and status in ("stopped", "paused") and len(params) <= 2:
        op.verb = "stop"
    elif verb == "config" and status == "running" and len(params) <= 2:
        op.verb = "start"
    return op


def _ps_item_op(cmdlet: str, tokens: list[str]) -> ServiceOp | None:
    low = cmdlet.lower()
    if low in ("new-item", "ni", "remove-item"):
        params = _ps_params(tokens, _ITEM_PARAMS, ("path",))
        path = params.get("path", "")
        if params.get("name"):
            path = path.rstrip("\\") + "\\" + params["name"]
        found = _services_key(path)
        if found is None:
            return None
        host, service, sub = found
        return ServiceOp("powershell", "create-key" if low != "remove-item" else "delete-key", service=service,
                         host=host, reg_value=sub or None)
    params = _ps_params(tokens, _ITEM_PARAMS, ("path", "name", "value"))
    verb = "delete-value" if low == "remove-itemproperty" else "set-value"
    return _registry_op("powershell", verb, params.get("path", ""), params.get("name"), params.get("value"))


_WMI_CALL = re.compile(
    r"(?i)(?:-(?:method)?name\s+[\"']?|\.)(create|changestartmode|change|startservice|stopservice|delete)\b"
)
_WMI_DOT_ARGS = re.compile(r"(?i)\.(create|change|changestartmode)\s*\(([^)]*)\)")


def parse_powershell_wmi(text: str) -> list[ServiceOp]:
    """Win32_Service methods through CIM/WMI cmdlets or [wmiclass] objects (heuristic, by keyword)."""
    if "win32_service" not in text.lower():
        return []
    out = []
    for m in _WMI_CALL.finditer(text):
        method = m.group(1).lower()
        op = ServiceOp("wmi", _WMI_METHODS[method])
        name = _WMI_NAME.search(text)
        op.service = name.group(1) if name else None
        path = _WMI_PATH.search(text)
        if path:
            op.bin_path = next(g for g in path.groups() if g is not None)
        mode = _WMI_MODE.search(text)
        if mode:
            op.start_type = START_TYPES.get(mode.group(1).lower())
        dot = _WMI_DOT_ARGS.search(text)
        if dot and dot.group(1).lower() == method:
            args = [a.strip().strip("\"'") for a in dot.group(2).split(",")]
            if method == "changestartmode" and args and args[0]:
                op.start_type = START_TYPES.get(args[0].lower())
            elif method == "create" and len(args) >= 3:
                op.service = op.service or args[0] or None
                op.bin_path = op.bin_path or args[2] or None
            elif method == "change" and len(args) >= 2 and args[1] and args[1] != "$null":
                op.bin_path = op.bin_path or args[1]
        out.append(op)
    return out


def parse_powershell(text: str, native: bool) -> list[ServiceOp]:
    """Every service operation in PowerShell text; `native` also parses sc.exe/reg/wmic/net calls in it."""
    ops: list[ServiceOp] = []
    pieces = split_statements(text, powershell=True)
    previous = ""
    for index, piece in enumerate(pieces):
        if piece == "|":
            continue
        piped = index >= 2 and pieces[index - 1] == "|"
        piped_name = None
        if piped:
            got = _GET_SERVICE.match(previous)
            piped_name = got.group(1) if got else None
        previous = piece
        for m in _CMDLET.finditer(piece):
            cmdlet = m.group(1).lower()
            tokens = split_args(piece[m.end() :], powershell=True)
            op = (
                _ps_service_op(cmdlet, tokens, piped_name)
                if cmdlet in _PS_VERBS
                else _ps_item_op(cmdlet, tokens)
                if cmdlet not in ("invoke-cimmethod", "invoke-wmimethod")
                else None
            )
            if op is not None:
                ops.append(op)
                break  # one cmdlet per statement: what follows it are its arguments
        if native:
            ops.extend(parse_native(piece, powershell=True))
    ops.extend(parse_powershell_wmi(text))
    return ops


# ------------------------------------------------------------------ entry points

# Substrings (lower case) without which a text cannot hold a service operation the parser knows: checked
# with `in` (C speed) before any tokenising, so long scripts that never touch a service cost one scan.
_HINTS = ("-service", "sasv", "spsv", "win32_service", "\\services\\", "sc ", "sc.exe", "sc\"", "reg ", "reg.exe",
          "wmic", "net ", "net1", "net.exe")


def has_service_hint(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in _HINTS)


_NATIVE_HINT = re.compile(r"(?i)(?<![\w-])(?:sc|reg|wmic|net1?)(?:\.exe)?[\"']?\s")


def parse_native(statement: str, powershell: bool = False) -> list[ServiceOp]:
    """sc/reg/wmic/net invocations anywhere in one statement (`cmd /c sc config ...`)."""
    if not _NATIVE_HINT.search(statement):
        return []
    tokens = split_args(statement, powershell=powershell)
    for i, token in enumerate(tokens):
        tool = _program(token)
        if tool is None or tool == "powershell":
            continue
        op = _parse_tool(tool, tokens[i + 1 :], statement)
        if op is not None:
            return [op]
    return []


def _parse_tool(tool: str, args: list[str], text: str) -> ServiceOp | None:
    if tool == "sc":
        return parse_sc(args)
    if tool == "reg":
        return parse_reg(args)
    if tool == "net":
        return parse_net(args)
    return parse_wmic(args, text)


_RAW_TOKEN = re.compile(r"""\s*("(?:[^"\\]|\\.)*"?|'[^']*'?|\S+)""")
# powershell.exe switches that take a value; every other switch is a flag.
_VALUE_SWITCHES = ("executionpolicy", "ep", "windowstyle", "file", "version", "inputformat", "outputformat",
                   "psconsolefile", "workingdirectory", "wd", "configurationname", "settingsfile", "custompipename")


def _is_encoded_switch(name: str) -> bool:
    return name == "ec" or (name[:1] == "e" and len(name) > 1 and "encodedcommand".startswith(name)) or name == "e"


def powershell_text(command_line: str) -> str:
    """The script a powershell.exe command line runs: its `-Command` text, or the decoded `-EncodedCommand`.

    Walks the switches after the program like PowerShell does: `-Command` (or any prefix of it) or the
    first argument that is not a switch starts the script, which runs to the end of the line.
    """
    tokens = [(m.group(1), m.start(1)) for m in _RAW_TOKEN.finditer(command_line)]
    i = 1
    while i < len(tokens):
        token, at = tokens[i]
        if token[:1] not in "-/" or len(token) < 2:
            return command_line[at:]
        name = token[1:].lower().rstrip(":")
        if name[:1] == "c" and "command".startswith(name):
            return _unquote(command_line[tokens[i + 1][1] :]) if i + 1 < len(tokens) else ""
        if _is_encoded_switch(name) and i + 1 < len(tokens):
            try:
                return base64.b64decode(tokens[i + 1][0], validate=True).decode("utf-16-le", errors="replace")
            except (binascii.Error, ValueError):
                return command_line
        if any(v.startswith(name) for v in _VALUE_SWITCHES) and name not in ("e", "ec"):
            i += 1
        i += 1
    return ""


def _unquote(script: str) -> str:
    script = script.strip()
    if len(script) > 1 and script[0] == '"' and script[-1] == '"':
        return script[1:-1].replace('\\"', '"')
    return script


_BINDING = re.compile(r'ParameterBinding\(([^)]+)\): name="([^"]*)"; value="(.*)"\s*$')
_INVOCATION = re.compile(r"CommandInvocation\(([^)]+)\)")


def module_log_text(payload: str) -> str:
    """PowerShell module-logging details (4103 Payload, 800 Details) rebuilt as commands.

    `CommandInvocation(Set-Service): ...` followed by `ParameterBinding(Set-Service): name="Name"; value="x"`
    lines become `Set-Service -Name 'x'`, which the PowerShell parser reads like any script.
    """
    commands: list[list[str]] = []
    for line in payload.splitlines():
        inv = _INVOCATION.match(line.strip())
        if inv is not None:
            commands.append([inv.group(1)])
            continue
        bound = _BINDING.match(line.strip())
        if bound is not None:
            if not commands or commands[-1][0].lower() != bound.group(1).lower():
                commands.append([bound.group(1)])
            value = bound.group(3).replace("'", "''")
            commands[-1].append(f"-{bound.group(2)} '{value}'")
    return "\n".join(" ".join(c) for c in commands)


_TOOL_CACHE: dict[tuple[str | None, str | None], str | None] = {}


def process_tool(image: str | None, original_name: str | None, command_line: str) -> str | None:
    """The service tool a process-creation event started (None for every other program: the hot path).

    Images repeat across events, so the answer for an (image, OriginalFileName) pair is remembered.
    """
    key = (image, original_name)
    tool = _TOOL_CACHE.get(key, "")
    if tool != "":
        return tool
    if not image:
        return _program_of(image, original_name, command_line)  # depends on the command line: not cached
    tool = _program_of(image, original_name, command_line)
    if len(_TOOL_CACHE) > 4096:
        _TOOL_CACHE.clear()
    _TOOL_CACHE[key] = tool
    return tool


def _program_of(image: str | None, original_name: str | None, command_line: str) -> str | None:
    if image:
        tool = PROGRAMS.get(image[image.rfind("\\") + 1 :].lower())
        if tool is not None:
            return tool
    if original_name:
        tool = ORIGINAL_NAMES.get(original_name.lower())
        if tool is not None or image:
            return tool
    if image:
        return None
    # no image recorded: the command line's first token names the program
    first = command_line.lstrip()
    first = first[1:].partition('"')[0] if first.startswith('"') else first.partition(" ")[0]
    return _program(first)


def parse_process(image: str | None, original_name: str | None, command_line: str) -> list[ServiceOp]:
    """Operations of one process-creation event, judged by the program it started.

    Only the event's own program is parsed: `cmd /c sc config ...` starts sc.exe, whose own event
    carries the operation, so the wrapper is not counted twice.
    """
    tool = process_tool(image, original_name, command_line)
    if tool is None:
        return []
    if tool == "powershell":
        script = powershell_text(command_line)
        return parse_powershell(script, native=False) if has_service_hint(script) else []
    args = split_args(command_line)
    op = _parse_tool(tool, args[1:], command_line)
    return [op] if op is not None else []
