"""The recipient's pages, as HTML made here (no script: a recipient's browser runs none of ours): the
landing page (who shared what, for whom, from which practice), the passcode form, the Download button
(a form: a POST, so an e-mail scanner that fetches every link uses nothing up), the file list, and a page
for each refusal that says what to do next. Every value is escaped; every page is sent with
`Cache-Control: no-store`.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, tzinfo
from typing import Any

from fastapi.responses import HTMLResponse

from pacsindex.errors import (
    BadPasscode,
    CsrfRejected,
    IndexNotFound,
    NotFound,
    PacsIndexError,
    PasscodeRequired,
    ShareBusy,
    ShareError,
    ShareExpired,
    ShareLimitReached,
    ShareLinkNotFound,
    ShareLocked,
    ShareRevoked,
)
from pacsindex.share.store import Share, iso
from pacsindex.web.status import status_for

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# (title, what to do) for each refusal; the status comes from the one table (status.py)
REFUSALS: dict[type[PacsIndexError], tuple[str, str]] = {
    ShareLinkNotFound: ("Link not found", "Check that the whole link was copied: links are long."),
    ShareExpired: ("Link expired", "Ask the practice for a new link."),
    ShareRevoked: ("Link withdrawn", "Ask the practice for a new link."),
    ShareLimitReached: ("Link used up", "Ask the practice for a new link."),
    ShareLocked: ("Link locked", "Wait, then try the passcode again."),
    ShareBusy: ("Busy", "Several downloads are running: try again in a minute."),
    PasscodeRequired: ("Passcode needed", "Enter the passcode the practice gave you."),
    BadPasscode: ("Wrong passcode", "Check the passcode and try again."),
    CsrfRejected: ("Refused", "Open the link itself and use the form on its page."),
    NotFound: ("No longer available", "The practice's archive has changed: ask for a new link."),
    IndexNotFound: ("No longer available", "The practice's archive has changed: ask for a new link."),
    PacsIndexError: ("Not available right now", "Try again later, or ask the practice."),
}


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


_e = escape


def page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='referrer' content='no-referrer'><meta name='robots' content='noindex'>"
        f"<title>{_e(title)} · pacsindex</title><link rel='icon' href='data:,'>"
        "<link rel='stylesheet' href='/static/app.css'></head>"
        "<body class='share-page'><main id='main'><section class='card share-card'>"
        "<p class='brand share-brand'>pacs<span>index</span></p>"
        f"<h1>{_e(title)}</h1>{body}</section></main></body></html>",
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


def passcode_form(token: str, message: str | None = None) -> str:
    note = f"<p class='notice error' role='alert'>{_e(message)}</p>" if message else ""
    return (
        f"{note}<form method='post' action='/share/{_e(token)}' class='stacked share-form'>"
        "<label for='passcode'>Passcode</label>"
        "<input id='passcode' name='passcode' type='password' autocomplete='off' required maxlength='128' "
        "autofocus><button type='submit' class='primary'>Open</button></form>"
    )


def refusal_page(exc: PacsIndexError, token: str | None = None) -> HTMLResponse:
    title, advice = next(REFUSALS[c] for c in type(exc).__mro__ if c in REFUSALS)
    status = status_for(exc, recipient=True)
    headers = {}
    retry = getattr(exc, "retry_after", None)
    if retry:
        headers["Retry-After"] = str(retry)
    if isinstance(exc, PasscodeRequired | BadPasscode) and token is not None:
        message = str(exc) if isinstance(exc, BadPasscode) else None
        return page(title, passcode_form(token, message), status, headers)
    if isinstance(exc, ShareError | NotFound | CsrfRejected):
        said = f"<p class='notice error' role='alert'>{_e(str(exc)[:1].upper() + str(exc)[1:])}.</p>"
    else:  # the message is for staff (it may name the server's files): the log has the kind
        log.warning("a share link could not be served: %s", type(exc).__name__)
        said = ""
    return page(title, f"{said}<p>{_e(advice)}</p>", status, headers)


def _link(url: str | None, text: str) -> str:
    return f"<a href='{_e(url)}'>{_e(text)}</a>" if url else _e(text)


def size_text(n: int) -> str:
    value, units = float(n), ["bytes", "KB", "MB", "GB", "TB"]
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{value:,.0f} {units[unit]}" if unit == 0 else f"{value:,.1f} {units[unit]}"


def dicom_date(text: str | None) -> str:
    if text and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or "unknown"


def _practice(practice: dict[str, str]) -> str:
    if not any(practice.values()):
        return ""
    parts = [f"<strong>{_e(practice['name'])}</strong>" if practice.get("name") else ""]
    parts += [_e(practice[k]) for k in ("address", "phone") if practice.get(k)]
    return f"<p class='share-practice' id='share-practice'>{'<br>'.join(p for p in parts if p)}</p>"


def download_form(token: str, label: str) -> str:
    return (
        f"<form method='post' action='/share/{_e(token)}/download' class='share-actions'>"
        f"<button type='submit' class='primary' id='share-download'>{_e(label)}</button></form>"
    )


def landing_page(
    token: str,
    share: Share,
    series: list[dict[str, Any]],
    tz: tzinfo,
    practice: dict[str, str],
) -> HTMLResponse:
    """What the link holds (no patient name): who shared it, for whom, each series' modality, date, files
    and size, until when, and the Download button."""
    expires = iso(share.expires_at)
    until = datetime.fromtimestamp(share.expires_at, tz).strftime("%Y-%m-%d %H:%M %Z")
    files = sum(int(s.get("file_count") or 0) for s in series)
    size = sum(int(s.get("total_size") or 0) for s in series)
    left = (
        f"<dt>Downloads left</dt><dd>{share.max_downloads - share.downloads} of {share.max_downloads}</dd>"
        if share.max_downloads is not None
        else ""
    )
    note = f"<dt>For</dt><dd id='share-note'>{_e(share.note)}</dd>" if share.note else ""
    rows = "".join(
        f"<tr><td>{_e(s.get('Modality') or '')}</td><td>{_e(dicom_date(s.get('StudyDate')))}</td>"
        f"<td>{'' if share.deidentified else _e(s.get('SeriesDescription') or '')}</td>"
        f"<td class='num'>{int(s.get('file_count') or 0)}</td></tr>"
        for s in series
    )
    what = "series" if len(series) == 1 else f"{len(series)} series"
    deid = (
        "<p class='notice'>These images are de-identified: names, IDs and dates in the files are replaced. "
        "Text burned into the pixels cannot be removed this way.</p>"
        if share.deidentified
        else ""
    )
    body = (
        _practice(practice) + f"<p>{_e(share.created_by)} has shared {what} of images with you.</p>{deid}"
        "<dl class='fields share-fields'>"
        f"{note}<dt>Shared by</dt><dd id='share-by'>{_e(share.created_by)}</dd>"
        f"<dt>Files</dt><dd id='share-file-count'>{files}</dd>"
        f"<dt>Size</dt><dd>{_e(size_text(size))}</dd>"
        f"<dt>Link valid until</dt><dd><time datetime='{_e(expires)}'>{_e(until)}</time></dd>{left}</dl>"
        "<div class='table-wrap'><table id='share-series'><thead><tr><th>Modality</th><th>Study date</th>"
        f"<th>Series</th><th class='num'>Files</th></tr></thead><tbody>{rows}</tbody></table></div>"
        + download_form(token, f"Download (zip, {size_text(size)})")
        + f"<p><a class='button' id='share-view' href='/share/{_e(token)}/view'>View the images</a>"
        f" <a href='/share/{_e(token)}/files'>List the files</a></p>"
        "<p class='muted'>The zip holds a DICOMDIR that RadiAnt, MicroDicom, Horos, OsiriX and Weasis open, "
        "a README.txt saying how, and MANIFEST.txt, which lists every file. A broken download can be "
        "resumed by the browser. Do not forward this link: it gives access to patient images.</p>"
    )
    return page("Shared images", body)


def confirm_page(token: str) -> HTMLResponse:
    """What a GET of the download address shows: the button, so that opening the address (or an e-mail
    scanner fetching it) uses no download."""
    body = (
        "<p>Press the button to start the download.</p>"
        + download_form(token, "Download the zip")
        + f"<p><a href='/share/{_e(token)}'>← What this link holds</a></p>"
    )
    return page("Download", body)


def files_page(token: str, rows: list[dict[str, Any]], single: bool) -> HTMLResponse:
    table = "".join(
        f"<tr><td class='num'>{r['n']}</td><td>{_link(r['url'], r['name'])}</td>"
        f"<td class='num'>{_e(size_text(int(r['size'])))}</td></tr>"
        for r in rows
    )
    note = "" if single else "<p class='muted'>This link allows only whole downloads (the zip).</p>"
    body = (
        f"<p><a href='/share/{_e(token)}'>← Back</a></p>{note}<div class='table-wrap'><table>"
        "<thead><tr><th class='num'>#</th><th>File</th><th class='num'>Size</th></tr></thead>"
        f"<tbody>{table}</tbody></table></div>"
    )
    return page(f"{len(rows)} files", body)
