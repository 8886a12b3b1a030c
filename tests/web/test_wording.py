"""The page's error sentences point to the Settings and Indexing pages, never to environment variables,
`net use` or a command line (tests/test_ui_nas.py sees it with a real NAS refusing a login)."""

from __future__ import annotations

from pacsindex.web.wording import for_staff

# As sources/smb/conn.py words a refused login for the command line.
REFUSED = (
    "the NAS at nas refused the login (user 'reader'): check PACSINDEX_SMB_USER and "
    "PACSINDEX_SMB_PASSWORD (or the NAS settings); a domain account is written DOMAIN\\user. "
    "Or map the share in Windows (net use Z: \\\\nas\\Image Archiving) and index the drive: "
    "pacsindex index Z:\\2019"
)


def test_a_refused_nas_login_points_to_the_settings_page() -> None:
    assert for_staff(REFUSED) == (
        "the NAS at nas refused the login (user 'reader'): check the NAS user and password on the "
        "Settings page (Settings → NAS); a domain account is written DOMAIN\\user."
    )


def test_other_variables_and_empty_messages() -> None:
    assert for_staff("set PACSINDEX_ORTHANC_PASSWORD first") == "set the server's settings first"
    assert for_staff("no share named 'x' (in Windows, net view \\\\nas lists them).") == "no share named 'x'."
    assert for_staff(None) is None and for_staff("") == ""
