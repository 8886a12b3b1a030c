"""Running `pacsindex serve` as a Windows service: a Task Scheduler task that starts at boot, with no one
signed in, under the account that may read the archive share, and restarts it if it stops.

`task_xml` writes the task definition (Task Scheduler schema 1.2); `install_command` is the `schtasks`
command that registers it (`/RU` and `/RP *`, so Windows asks for the account's password itself and it
never passes through pacsindex). The task runs this Python with `-m pacsindex serve --config FILE`, every
path quoted, so folders with spaces ("C:\\Program Files\\...") work. Task Scheduler rather than a service
wrapper: it ships with every Windows, needs nothing installed, and logs each start in its history.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import PureWindowsPath

from pacsindex.errors import ConfigError, PacsIndexError

__all__ = ["TASK_NAME", "install_command", "quote", "task_xml", "uninstall_command"]

TASK_NAME = "pacsindex"
NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
SYSTEM_ACCOUNTS = {
    "SYSTEM",
    "NT AUTHORITY\\SYSTEM",
    "NT AUTHORITY\\NETWORK SERVICE",
    "NT AUTHORITY\\LOCAL SERVICE",
}


def quote(arg: str) -> str:
    """One command-line argument as Windows' CommandLineToArgvW reads it back."""
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    out, backslashes = ['"'], 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + c)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


def task_xml(
    config: str, *, python: str | None = None, account: str = "NT AUTHORITY\\NETWORK SERVICE"
) -> str:
    """The task definition: at boot, as `account`, run `python -m pacsindex serve --config config`."""
    if not config:
        raise ConfigError("give the settings file the service runs with (--config)")
    python = python or sys.executable
    ET.register_namespace("", NS)

    def el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        child = ET.SubElement(parent, f"{{{NS}}}{tag}")
        if text is not None:
            child.text = text
        return child

    task = ET.Element(f"{{{NS}}}Task", {"version": "1.2"})
    info = el(task, "RegistrationInfo")
    el(info, "Description", "pacsindex: search the practice's DICOM archive (web service)")
    el(info, "URI", "\\" + TASK_NAME)
    boot = el(el(task, "Triggers"), "BootTrigger")
    el(boot, "Enabled", "true")
    el(boot, "Delay", "PT1M")  # let the network (and the NAS share) come up first
    principal = el(el(task, "Principals"), "Principal")
    principal.set("id", "Service")
    el(principal, "UserId", account)
    system = account.upper() in SYSTEM_ACCOUNTS
    el(principal, "LogonType", "ServiceAccount" if system else "Password")
    el(principal, "RunLevel", "LeastPrivilege")
    settings = el(task, "Settings")
    for tag, value in (
        ("MultipleInstancesPolicy", "IgnoreNew"),
        ("DisallowStartIfOnBatteries", "false"),
        ("StopIfGoingOnBatteries", "false"),
        ("AllowHardTerminate", "true"),
        ("StartWhenAvailable", "true"),
        ("RunOnlyIfNetworkAvailable", "false"),
        ("AllowStartOnDemand", "true"),
        ("Enabled", "true"),
        ("Hidden", "false"),
        ("ExecutionTimeLimit", "PT0S"),  # runs for ever
    ):
        el(settings, tag, value)
    restart = el(settings, "RestartOnFailure")
    el(restart, "Interval", "PT1M")
    el(restart, "Count", "999")
    actions = el(task, "Actions")
    actions.set("Context", "Service")
    exe = el(actions, "Exec")
    el(exe, "Command", python)
    el(exe, "Arguments", " ".join(quote(a) for a in ("-m", "pacsindex", "serve", "--config", config)))
    el(exe, "WorkingDirectory", str(PureWindowsPath(config).parent))
    ET.indent(task)
    return '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode") + "\n"


def install_command(xml_path: str, account: str) -> list[str]:
    command = ["schtasks", "/Create", "/TN", TASK_NAME, "/XML", xml_path, "/F"]
    if account.upper() not in SYSTEM_ACCOUNTS:
        command += ["/RU", account, "/RP", "*"]  # schtasks asks for the password itself
    return command


def uninstall_command() -> list[str]:
    return ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]


def run(command: list[str]) -> None:
    """Run a schtasks command (Windows only); PacsIndexError with its message when it fails."""
    if sys.platform != "win32":
        raise PacsIndexError(
            "a Windows service can only be registered on Windows; on this computer run: "
            + " ".join(quote(a) for a in command)
        )
    done = subprocess.run(command, check=False)  # noqa: S603 - a fixed program and our own arguments
    if done.returncode != 0:
        raise PacsIndexError(f"schtasks failed (exit {done.returncode}): run it as an administrator")
