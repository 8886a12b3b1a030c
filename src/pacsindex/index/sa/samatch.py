"""Recognising South African medical schemes and hospitals in free-text DICOM fields.

Two tables ship in `pacsindex/index/sa/data/` (`medical_aids.toml`, `hospitals.toml`); a practice adds to
them or replaces them in its settings file, under `[medical_aids]` and `[hospitals]` (config.Settings.extra):

    [medical_aids]
    replace = false                        # true: forget the built-in schemes, use only these
    ignore_aliases = ["Momentum"]          # aliases never to match, built-in or not
    [[medical_aids.scheme]]
    name = "Discovery Health Medical Scheme"   # an existing name (any spelling): adds aliases / sets group
    aliases = ["DHMS KEYCARE", "VITALITY"]
    [[medical_aids.scheme]]
    name = "Wooltru Healthcare Fund"       # a new name: a new scheme
    aliases = ["Wooltru"]
    group = "Restricted"                   # optional: any grouping the practice wants to filter by

    [hospitals]
    replace = false
    ignore_aliases = ["Life"]
    [[hospitals.group]]
    name = "Busamed"
    aliases = ["Busamed Hospitals"]
    [[hospitals.facility]]
    name = "Busamed Modderfontein Private Hospital"
    group = "Busamed"                      # a group's name; omit for an independent hospital
    aliases = ["Busamed Modderfontein", "Modderfontein Private"]

Matching folds both sides the same way: NFKC, accents stripped, casefold, and split into words at
anything that is not a letter or digit; runs of single letters are joined ("G.E.M.S." is "gems"). An alias
of 4 characters or fewer ("GEMS", "LHC", "Bara") must equal whole words of the text, so "GEMSTONE" is not
GEMS and "Lifestyle" is not Life. A longer alias is compared with spaces removed and must start where a
word of the text starts, but may run on ("Milpark Hosp" finds "NETCARE MILPARK HOSPITAL", "Discovery
Health" finds "DiscoveryHealth"). Of all aliases found in all texts, a facility beats a group, then the
longest alias wins, then the earlier text, then the earlier table entry. When two entries claim the same
alias, the later one (the practice's own table) keeps it.

Structured fields win over free text: the scheme is looked for in InsurancePlanIdentification, the
issuers and OtherPatientIDs first, and only when none names one in PatientComments ("Self-medicating"
beside InsurancePlanIdentification "GEMS" stays GEMS). In free text an alias that is also an everyday word
or place name (each table's `common_words`: "Discovery", "Key Health", "Life", "Tygerberg") does not count
on its own, so "Incidental discovery" or an address on "Tygerberg Valley Road" names nobody.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Generic, TypeVar

from pacsindex.errors import ConfigError
from pacsindex.index.textfold import strip_accents

SHORT_ALIAS = 4  # aliases this long or shorter must match whole words
_WORD = re.compile(r"[^\W_]+")
_CACHE_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class MedicalAid:
    """A medical scheme by its normalised name; `group` is whatever grouping the table gives (or None)."""

    name: str
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Hospital:
    """A recognised hospital: `name` is the facility (None when only its group was recognised), `group`
    the hospital group or provincial department (None for an independent hospital)."""

    name: str | None
    group: str | None


def words(text: str) -> list[str]:
    """The folded words of `text` as the matcher sees them."""
    folded = strip_accents(unicodedata.normalize("NFKC", text)).casefold()
    out: list[str] = []
    letters: list[str] = []
    for word in _WORD.findall(folded):
        if len(word) == 1 and word.isalpha():
            letters.append(word)
            continue
        _flush_letters(letters, out)
        out.append(word)
    _flush_letters(letters, out)
    return out


def _flush_letters(letters: list[str], out: list[str]) -> None:
    if len(letters) > 1:  # "C.H.B.A.H." or "G E M S": an acronym typed with dots or spaces
        out.append("".join(letters))
    else:
        out.extend(letters)
    letters.clear()


def _key(text: str) -> str:
    return "".join(words(text))


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Alias(Generic[T]):
    words: tuple[str, ...]
    key: str
    target: T
    rank: int  # 1: a facility, 0: a group or a scheme
    order: int


class _Matcher(Generic[T]):
    def __init__(
        self, aliases: Iterable[tuple[str, T, int]], ignore: Iterable[str] = (), common: Iterable[str] = ()
    ) -> None:
        ignored = {_key(a) for a in ignore}
        self._common = {_key(a) for a in common}
        by_key: dict[str, tuple[str, T, int]] = {}
        for alias, target, rank in aliases:
            key = _key(alias)
            if key and key not in ignored:
                by_key.pop(key, None)  # a later claim on the same alias wins, and ranks as later
                by_key[key] = (alias, target, rank)
        self._long: dict[str, list[_Alias[T]]] = {}
        self._short: dict[str, list[_Alias[T]]] = {}
        for order, (key, (alias, target, rank)) in enumerate(by_key.items()):
            entry = _Alias(tuple(words(alias)), key, target, rank, order)
            if len(key) <= SHORT_ALIAS:
                self._short.setdefault(entry.words[0], []).append(entry)
            else:
                self._long.setdefault(key[:3], []).append(entry)
        self._cache: dict[str, tuple[tuple[_Alias[T], bool], ...]] = {}

    def _found(self, text: str) -> tuple[tuple[_Alias[T], bool], ...]:
        """Every alias found in `text`, each with whether it ends where a word ends (not running on)."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        toks = words(text)
        compact = "".join(toks)
        ends = set()
        total = 0
        for tok in toks:
            total += len(tok)
            ends.add(total)
        found: list[tuple[_Alias[T], bool]] = []
        start = 0
        for i, tok in enumerate(toks):
            for alias in self._long.get(compact[start : start + 3], ()):
                if compact.startswith(alias.key, start):
                    found.append((alias, start + len(alias.key) in ends))
            for alias in self._short.get(tok, ()):
                if tuple(toks[i : i + len(alias.words)]) == alias.words:
                    found.append((alias, True))
            start += len(tok)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = result = tuple(found)
        return result

    def best(self, texts: Sequence[str | None], free: bool = False) -> T | None:
        """The best target named in `texts`. In free text (`free`) an alias must end where a word ends
        ("Self-medicating" is not Selfmed), and one that is also an everyday word or place name
        ("Discovery", "Life", "Tygerberg") does not count on its own."""
        best: tuple[int, int, int, int] | None = None
        target: T | None = None
        for index, text in enumerate(texts):
            if not text:
                continue
            for alias, whole in self._found(text):
                if free and (alias.key in self._common or not whole):
                    continue
                score = (alias.rank, len(alias.key), -index, -alias.order)
                if best is None or score > best:
                    best, target = score, alias.target
        return target


@dataclass
class _Entry:
    name: str
    group: str | None
    aliases: list[str]


class Tables:
    """The loaded medical-aid and hospital tables, ready to match. Build with `load_tables`."""

    def __init__(
        self,
        schemes: Sequence[_Entry],
        groups: Sequence[_Entry],
        facilities: Sequence[_Entry],
        ignore_aid_aliases: Iterable[str] = (),
        ignore_hospital_aliases: Iterable[str] = (),
        common_aid_aliases: Iterable[str] = (),
        common_hospital_aliases: Iterable[str] = (),
    ) -> None:
        self.medical_aids = tuple(MedicalAid(e.name, e.group) for e in schemes)
        self._aid_names: dict[str, MedicalAid] = {}  # every name and alias, folded → the scheme
        for entry, aid in zip(schemes, self.medical_aids, strict=True):
            for alias in _all(entry):
                self._aid_names[_key(alias)] = aid
        group_names = {_key(g.name): g.name for g in groups}
        facility_hospitals = [
            Hospital(f.name, group_names.get(_key(f.group), f.group) if f.group else None) for f in facilities
        ]
        group_hospitals = [Hospital(None, g.name) for g in groups]
        self.hospitals = tuple(group_hospitals + facility_hospitals)
        self._aids = _Matcher(
            ((alias, aid, 0) for e, aid in zip(schemes, self.medical_aids, strict=True) for alias in _all(e)),
            ignore_aid_aliases,
            common_aid_aliases,
        )
        hospital_aliases: list[tuple[str, Hospital, int]] = []
        for entry, hospital in zip(groups, group_hospitals, strict=True):
            hospital_aliases += [(alias, hospital, 0) for alias in _all(entry)]
        for entry, hospital in zip(facilities, facility_hospitals, strict=True):
            hospital_aliases += [(alias, hospital, 1) for alias in _all(entry)]
        self._hospitals = _Matcher(hospital_aliases, ignore_hospital_aliases, common_hospital_aliases)
        self._hospital_names: dict[str, Hospital] = {}  # every name and alias, folded → facility or group
        for alias, hospital, _rank in hospital_aliases:
            self._hospital_names.setdefault(_key(alias), hospital)

    def medical_aid(self, *texts: str | None, free: Sequence[str | None] = ()) -> MedicalAid | None:
        """The scheme named in any of `texts` (structured fields: insurance plan, issuers, other IDs), else
        in the `free` texts (PatientComments), where an everyday-word alias alone does not count: a
        structured field always wins over free text."""
        return self._aids.best(texts) or self._aids.best(free, free=True)

    def hospital(self, *texts: str | None, free: Sequence[str | None] = ()) -> Hospital | None:
        """The facility (or at least the group) named in any of `texts` (InstitutionName first), else in
        the `free` texts (InstitutionAddress); free text may still name the facility of a group the
        structured fields name."""
        found = self._hospitals.best(texts)
        if found is not None and found.name is not None:
            return found
        loose = self._hospitals.best(free, free=True)
        if found is None or (loose is not None and loose.name is not None and loose.group == found.group):
            return loose or found
        return found

    def medical_aid_named(self, text: str) -> MedicalAid | None:
        """The scheme whose name or alias `text` is (any spelling): "GEMS" → Government Employees..."""
        return self._aid_names.get(_key(text))

    def hospital_named(self, text: str) -> Hospital | None:
        """The facility (or group) whose name or alias `text` is: "CHBAH" → Chris Hani Baragwanath..."""
        return self._hospital_names.get(_key(text))

    def hospital_suggestions(self, text: str, groups: bool = False, limit: int = 3) -> list[str]:
        """Facility names (or, with `groups`, group names) close to `text`, best first."""
        close = difflib.get_close_matches(_key(text), list(self._hospital_names), n=limit * 3, cutoff=0.6)
        names = (self._hospital_names[k].group if groups else self._hospital_names[k].name for k in close)
        return [n for n in dict.fromkeys(names) if n][:limit]

    def medical_aid_suggestions(self, text: str, limit: int = 3) -> list[str]:
        """Scheme names close to `text` (a misspelt name or alias), best first."""
        close = difflib.get_close_matches(_key(text), list(self._aid_names), n=limit * 3, cutoff=0.6)
        return list(dict.fromkeys(self._aid_names[k].name for k in close))[:limit]


def _all(entry: _Entry) -> Iterator[str]:
    yield entry.name
    yield from entry.aliases


def _section_entries(section: Mapping[str, Any], kind: str, where: str) -> list[_Entry]:
    raw = section.get(kind, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: {kind} must be a list of tables ([[...{kind}]])")
    entries = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: each {kind} must be a table with name and aliases")
        name = item.get("name")
        if not isinstance(name, str) or not _key(name):
            raise ConfigError(f"{where}: a {kind} needs a name with letters or digits in it")
        unknown = set(item) - {"name", "aliases", "group"}
        if unknown:
            raise ConfigError(f"{where}: {kind} {name!r} has unknown keys: {', '.join(sorted(unknown))}")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and _key(a) for a in aliases):
            raise ConfigError(f"{where}: aliases of {name!r} must be a list of non-empty words")
        group = item.get("group")
        if group is not None and (not isinstance(group, str) or not group.strip()):
            raise ConfigError(f"{where}: group of {name!r} must be a name")
        entries.append(_Entry(name.strip(), group.strip() if group else None, list(aliases)))
    return entries


def _merge(base: list[_Entry], extra: list[_Entry]) -> list[_Entry]:
    """`extra` over `base`: an entry with the same name (any spelling) gains the aliases and group."""
    merged = {_key(e.name): _Entry(e.name, e.group, list(e.aliases)) for e in base}
    for e in extra:
        known = merged.get(_key(e.name))
        if known is None:
            merged[_key(e.name)] = _Entry(e.name, e.group, list(e.aliases))
        else:
            known.aliases += e.aliases
            known.group = e.group or known.group
    return list(merged.values())


_SECTION_KEYS = {
    "medical_aids": {"replace", "ignore_aliases", "scheme"},
    "hospitals": {"replace", "ignore_aliases", "group", "facility"},
}


def _section(overrides: Mapping[str, Any] | None, name: str) -> tuple[Mapping[str, Any], bool, list[str]]:
    section = (overrides or {}).get(name) or {}
    where = f"[{name}]"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(section) - _SECTION_KEYS[name]
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    replace = section.get("replace", False)
    if not isinstance(replace, bool):
        raise ConfigError(f"{where} replace must be true or false")
    ignore = section.get("ignore_aliases", [])
    if not isinstance(ignore, list) or not all(isinstance(a, str) for a in ignore):
        raise ConfigError(f"{where} ignore_aliases must be a list of aliases")
    return section, replace, ignore


@cache
def _defaults(filename: str) -> dict[str, Any]:
    text = resources.files("pacsindex.index.sa").joinpath("data", filename).read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_tables(overrides: Mapping[str, Any] | None = None) -> Tables:
    """The built-in tables with a practice's `[medical_aids]` / `[hospitals]` sections (e.g.
    `settings.extra`) merged over them. ConfigError says what is wrong with a section."""
    aid_section, aid_replace, aid_ignore = _section(overrides, "medical_aids")
    hosp_section, hosp_replace, hosp_ignore = _section(overrides, "hospitals")
    aid_defaults = {} if aid_replace else _defaults("medical_aids.toml")
    hosp_defaults = {} if hosp_replace else _defaults("hospitals.toml")
    schemes = _merge(
        _section_entries(aid_defaults, "scheme", "medical_aids.toml"),
        _section_entries(aid_section, "scheme", "[medical_aids]"),
    )
    groups = _merge(
        _section_entries(hosp_defaults, "group", "hospitals.toml"),
        _section_entries(hosp_section, "group", "[hospitals]"),
    )
    facilities = _merge(
        _section_entries(hosp_defaults, "facility", "hospitals.toml"),
        _section_entries(hosp_section, "facility", "[hospitals]"),
    )
    common_aids = [] if aid_replace else _common(_defaults("medical_aids.toml"), "medical_aids.toml")
    common_hosp = [] if hosp_replace else _common(_defaults("hospitals.toml"), "hospitals.toml")
    return Tables(schemes, groups, facilities, aid_ignore, hosp_ignore, common_aids, common_hosp)


def _common(table: Mapping[str, Any], where: str) -> list[str]:
    """The table's `common_words`: aliases that are also everyday words or place names."""
    words = table.get("common_words", [])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ConfigError(f"{where}: common_words must be a list of aliases")
    return words


@cache
def default_tables() -> Tables:
    """The built-in tables, loaded on first use and then kept."""
    return load_tables()


def match_medical_aid(*texts: str | None, tables: Tables | None = None) -> MedicalAid | None:
    """The medical scheme named in any of `texts`, or None."""
    return (tables or default_tables()).medical_aid(*texts)


def match_hospital(*texts: str | None, tables: Tables | None = None) -> Hospital | None:
    """The hospital (facility, else group) named in any of `texts`, or None."""
    return (tables or default_tables()).hospital(*texts)
