"""Ansible inventories (INI and YAML) read into SSH host specs, so `edgelstm deploy --inventory` and the Ansible
role reach the same devices. Groups (`children` too), `ansible_host`, `ansible_port`, `ansible_user`; host
ranges `pi[01:20]`. Variables apply from `all` down to the host's own (a child group's over its parent's)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user")


@dataclass
class InventoryHost:
    name: str
    vars: dict = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)

    @property
    def spec(self) -> str:
        """`[user@]host[:port]` for the SSH layer (HostSpec): the inventory name when there is no ansible_host."""
        user, port = self.vars.get("ansible_user"), self.vars.get("ansible_port")
        return (
            (f"{user}@" if user else "") + str(self.vars.get("ansible_host", self.name)) + (f":{port}" if port else "")
        )


@dataclass
class _Group:
    hosts: dict = field(default_factory=dict)  # name -> its own vars
    children: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)


def expand(pattern: str) -> list[str]:
    """`pi[01:03]` -> pi01, pi02, pi03 (numeric, zero padding kept; `[a:c]` letters); anything else as is."""
    m = re.search(r"\[([0-9a-z]+):([0-9a-z]+)\]", pattern)
    if not m:
        return [pattern]
    a, b = m.group(1), m.group(2)
    if a.isdigit() and b.isdigit():
        items = [str(i).zfill(len(a)) for i in range(int(a), int(b) + 1)]
    elif len(a) == len(b) == 1:
        items = [chr(c) for c in range(ord(a), ord(b) + 1)]
    else:
        raise InputError(f"bad host range '{pattern}'")
    return [x for item in items for x in expand(pattern[: m.start()] + item + pattern[m.end() :])]


def _value(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def parse_ini(text: str, where: str = "inventory") -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    section, kind = "ungrouped", "hosts"
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([^\]:]+)(?::(vars|children|hosts))?\]", line)
        if m:
            section, kind = m.group(1), m.group(2) or "hosts"
            groups.setdefault(section, _Group())
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as ex:
            raise InputError(f"{where}:{no}: {ex}") from None
        if not words:
            continue
        if kind == "vars":
            key, eq, val = line.partition("=")
            if not eq:
                raise InputError(f"{where}:{no}: expected key=value in [{section}:vars]")
            groups[section].vars[key.strip()] = _value(val.strip().strip("\"'"))
        elif kind == "children":
            groups[section].children.append(words[0])
            groups.setdefault(words[0], _Group())
        else:
            hvars = {}
            for w in words[1:]:
                key, eq, val = w.partition("=")
                if not eq:
                    raise InputError(f"{where}:{no}: expected key=value after the host name, got '{w}'")
                hvars[key] = _value(val)
            for name in expand(words[0]):
                groups[section].hosts.setdefault(name, {}).update(hvars)
    return groups


def parse_yaml(text: str, where: str = "inventory") -> dict[str, _Group]:
    from .._deps import require

    yaml = require("yaml", "deploy")
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as ex:
        raise InputError(f"{where}: not valid YAML: {str(ex).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a YAML inventory is a mapping of groups (all: hosts/children/vars)")
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}

    def walk(name: str, body) -> None:
        g = groups.setdefault(name, _Group())
        body = body or {}
        if not isinstance(body, dict):
            raise InputError(f"{where}: group '{name}' must be a mapping with hosts, children or vars")
        for pattern, hvars in (body.get("hosts") or {}).items():
            for host in expand(str(pattern)):
                g.hosts.setdefault(host, {}).update(hvars or {})
        g.vars.update(body.get("vars") or {})
        for child, cbody in (body.get("children") or {}).items():
            g.children.append(child)
            walk(child, cbody)

    for name, body in doc.items():
        walk(name, body)
    return groups


def read_inventory(path: Path, limit: list[str] | None = None) -> list[InventoryHost]:
    """The hosts of an inventory file (YAML if it parses as a mapping of groups, else INI), in file order; with
    `limit`, only members of those groups (or those host names)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as ex:
        raise InputError(f"{path}: cannot read the inventory: {ex.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (an Ansible inventory is INI or YAML text)") from None
    yamlish = path.suffix.lower() in (".yml", ".yaml") or re.match(r"\s*(---|\w[\w.-]*:\s*$)", text)
    groups = parse_yaml(text, str(path)) if yamlish else parse_ini(text, str(path))
    for name, g in groups.items():
        for child in g.children:
            if child == name or child not in groups:
                raise InputError(f"{path}: group '{name}' lists an unknown child '{child}'")
    depth: dict[str, int] = {"all": 0}
    closure: dict[str, dict[str, None]] = {}  # group -> its hosts and its children's, ordered (dict as ordered set)

    def members(name: str, seen: tuple = ()) -> dict[str, None]:
        if name in seen:
            raise InputError(f"{path}: groups form a cycle: {' -> '.join((*seen, name))}")
        if name not in closure:
            out = dict.fromkeys(groups[name].hosts)
            for child in groups[name].children:
                depth[child] = max(depth.get(child, 1), depth.get(name, 1) + 1)
                out.update(members(child, (*seen, name)))
            closure[name] = out
        return closure[name]

    order: dict[str, None] = {}
    for name in ["all", *[n for n in groups if n != "all"]]:
        order.update(members(name))
    in_groups: dict[str, list[str]] = {h: [] for h in order}
    for name in sorted(groups, key=lambda n: depth.get(n, 1)):
        for h in closure[name]:
            in_groups[h].append(name)
    hosts = []
    for h in order:
        hv: dict = dict(groups["all"].vars)
        for n in in_groups[h]:
            hv.update(groups[n].vars)
        for n in in_groups[h]:
            hv.update(groups[n].hosts.get(h, {}))
        hosts.append(InventoryHost(h, hv, [n for n in in_groups[h] if n not in ("all", "ungrouped")]))
    if limit:
        unknown = [x for x in limit if x not in groups and x not in order]
        if unknown:
            raise InputError(f"{path}: no group or host named {', '.join(unknown)}")
        hosts = [h for h in hosts if h.name in limit or set(limit) & set(h.groups) or "all" in limit]
    if not hosts:
        raise InputError(f"{path}: no hosts in the inventory" + (f" for {','.join(limit)}" if limit else ""))
    return hosts
