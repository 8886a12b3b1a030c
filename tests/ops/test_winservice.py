"""The Windows service as far as Linux can test it: the Task Scheduler XML is well-formed in the task
namespace, starts at boot with no one signed in, restarts on failure, runs `python -m pacsindex serve
--config FILE` with paths holding spaces quoted so Windows reads them back whole; `pacsindex service xml`
prints it, and `install` on Linux says it is for Windows and shows the command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conftest import run_cli
from pacsindex.ops.winservice import NS, install_command, quote, task_xml

T = f"{{{NS}}}"
PYTHON = r"C:\Program Files\pacsindex\.venv\Scripts\python.exe"
CONFIG = r"D:\Practice Data\pacsindex\pacsindex.toml"


def argv(line: str) -> list[str]:
    """The arguments as Windows' CommandLineToArgvW reads them back: 2n backslashes before a quote are n
    and the quote toggles quoting, 2n+1 are n and a literal quote; other backslashes are literal."""
    args: list[str] = []
    cur, in_arg, quoted, i = "", False, False, 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            n = 0
            while i < len(line) and line[i] == "\\":
                n, i = n + 1, i + 1
            if i < len(line) and line[i] == '"':
                cur += "\\" * (n // 2)
                if n % 2:
                    cur, i = cur + '"', i + 1
            else:
                cur += "\\" * n
            in_arg = True
            continue
        if c == '"':
            quoted, in_arg = not quoted, True
        elif c in " \t" and not quoted:
            if in_arg:
                args.append(cur)
            cur, in_arg = "", False
        else:
            cur, in_arg = cur + c, True
        i += 1
    if in_arg:
        args.append(cur)
    return args


def test_the_task_starts_pacsindex_serve_at_boot() -> None:
    xml = task_xml(CONFIG, python=PYTHON, account="CLINIC\\pacs-svc")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-16"?>')
    task = ET.fromstring(xml.split("\n", 1)[1])
    assert task.tag == T + "Task" and task.get("version") == "1.2"
    assert task.find(f"{T}Triggers/{T}BootTrigger/{T}Enabled").text == "true"
    principal = task.find(f"{T}Principals/{T}Principal")
    assert principal.find(T + "UserId").text == "CLINIC\\pacs-svc"
    assert principal.find(T + "LogonType").text == "Password"  # runs with no one signed in
    settings = task.find(T + "Settings")
    assert settings.find(T + "ExecutionTimeLimit").text == "PT0S"
    assert settings.find(f"{T}RestartOnFailure/{T}Count").text == "999"
    exe = task.find(f"{T}Actions/{T}Exec")
    assert exe.find(T + "Command").text == PYTHON
    arguments = exe.find(T + "Arguments").text
    assert arguments == '-m pacsindex serve --config "D:\\Practice Data\\pacsindex\\pacsindex.toml"'
    assert argv(arguments) == ["-m", "pacsindex", "serve", "--config", CONFIG]
    assert exe.find(T + "WorkingDirectory").text == r"D:\Practice Data\pacsindex"


def test_quoting_survives_quotes_and_trailing_backslashes() -> None:
    for arg in [r"C:\a b\\", 'say "hi"', r"C:\plain", r"\\nas\Image Archiving", ""]:
        assert argv(quote(arg)) == [arg]


def test_a_system_account_needs_no_password() -> None:
    xml = task_xml(CONFIG, python=PYTHON)
    assert "<LogonType>ServiceAccount</LogonType>" in xml
    assert install_command(r"C:\x.xml", "NT AUTHORITY\\NETWORK SERVICE") == [
        "schtasks",
        "/Create",
        "/TN",
        "pacsindex",
        "/XML",
        r"C:\x.xml",
        "/F",
    ]
    assert install_command(r"C:\x.xml", "CLINIC\\svc")[-4:] == ["/RU", "CLINIC\\svc", "/RP", "*"]


def test_the_cli_prints_the_xml_and_explains_install_off_windows(tmp_path) -> None:
    config = tmp_path / "my settings" / "pacsindex.toml"
    config.parent.mkdir()
    config.write_text("", encoding="utf-8")
    out = run_cli("service", "xml", "--config", str(config)).stdout
    assert ET.fromstring(out.split("\n", 1)[1]).tag == T + "Task"
    assert f'--config "{config}"' in out
    refused = run_cli(
        "service", "install", "--config", str(config), "--db", str(tmp_path / "x.db"), check=False
    )
    assert refused.returncode == 1 and "only be registered on Windows" in refused.stderr
    assert "schtasks /Create /TN pacsindex /XML" in refused.stderr
    assert (tmp_path / "pacsindex-task.xml").read_text(encoding="utf-16").startswith("<?xml")
