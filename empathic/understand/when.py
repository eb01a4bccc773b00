"""Time expressions in replies: the day and hour a person proposes, read against a given `now`.

Handles what people type in six languages: weekdays and their abbreviations ("thurs",
"jeudi", "Do" is too ambiguous and is not read), today / tomorrow / the day after, next week,
the weekend, "in 2 days", "in 30 min", clock times ("4", "4pm", "16h", "16:30", "à 14h30",
"um 15 Uhr", "a las 5", "after 5", "half 4", "halb 5", noon), and dates ("12/3", "2.12.",
"3 dec", "le 3 décembre", "Dec 2nd").

Rules for what people leave out:
- a bare hour 1–7 without am/pm is in the afternoon (business hours); 8–11 in the morning;
- a weekday is the next such day strictly after today; "today" must be said for today;
- a time without a day is its next occurrence; a date without a year is the next such date;
- "12/3" is month/day for English in the Americas, day/month everywhere else;
- parts of the day without a clock time ("friday morning") give just the day.

Pure: `now` is passed in, the clock is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import regex

__all__ = ["VOCABULARY", "find_day", "find_when", "month_first"]

_WEEKDAYS: dict[str, int] = {}
for _index, _names in enumerate((
    "monday lunes lundi montag segunda lunedi",
    "tuesday tues tue martes mardi dienstag terca martedi",
    "wednesday wed weds wednes miercoles mercredi mittwoch quarta mercoledi",
    "thursday thurs thur thu thrs thrus jueves jeudi donnerstag quinta giovedi",
    "friday fri viernes vendredi freitag sexta venerdi",
    "saturday sabado samedi samstag sonnabend sabato",
    "sunday domingo dimanche sonntag domenica",
)):
    for _name in _names.split():
        _WEEKDAYS[_name] = _index
# Abbreviations that are also words ("mon" rdv, "sat" down): only before a time or at a clause end.
_SHORT_WEEKDAYS = {"mon": 0, "sat": 5, "sun": 6}

_MONTHS: dict[str, int] = {}
for _index, _names in enumerate((
    "january jan enero janvier janv januar janner jaenner janeiro gennaio",
    "february feb febrero fevrier fevr fev februar fevereiro febbraio",
    "march mar marzo mars marz maerz marco",
    "april apr abril avril avr aprile",
    "may mayo mai maio maggio",
    "june jun junio juin juni junho giugno",
    "july jul julio juillet juil juli julho luglio",
    "august aug agosto aout",
    "september sept sep septiembre setiembre septembre setembro set settembre",
    "october oct octubre octobre oktober okt outubro out ottobre",
    "november nov noviembre novembre novembro",
    "december dec diciembre dic decembre dezember dez dezembro dicembre",
), start=1):
    for _name in _names.split():
        _MONTHS[_name] = _index

_HOUR_WORDS = {
    **dict.fromkeys(("one", "una", "une", "ein", "eins", "uma"), 1),
    **dict.fromkeys(("two", "dos", "deux", "zwei", "duas", "dois", "due"), 2),
    **dict.fromkeys(("three", "tres", "trois", "drei", "tre"), 3),
    **dict.fromkeys(("four", "cuatro", "quatre", "vier", "quatro", "quattro"), 4),
    **dict.fromkeys(("five", "cinco", "cinq", "funf", "fuenf", "cinque"), 5),
    **dict.fromkeys(("six", "seis", "sechs", "sei"), 6),
    **dict.fromkeys(("seven", "siete", "sept", "sieben", "sete", "sette"), 7),
    **dict.fromkeys(("eight", "ocho", "huit", "acht", "oito", "otto"), 8),
    **dict.fromkeys(("nine", "nueve", "neuf", "neun", "nove"), 9),
    **dict.fromkeys(("ten", "diez", "dix", "zehn", "dez", "dieci"), 10),
    **dict.fromkeys(("eleven", "once", "onze", "elf", "undici"), 11),
    **dict.fromkeys(("twelve", "doce", "douze", "zwolf", "zwoelf", "doze", "dodici"), 12),
}
_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "un": 1, "una": 1, "une": 1, "um": 1, "uma": 1, "einer": 1, "ner": 1,
                "two": 2, "dos": 2, "deux": 2, "zwei": 2, "dois": 2, "duas": 2, "due": 2,
                "three": 3, "tres": 3, "trois": 3, "drei": 3, "tre": 3}


# Words of time expressions, so misspellings are read as them and they are never "corrected".
VOCABULARY = frozenset(
    [*_WEEKDAYS, *_SHORT_WEEKDAYS, *_MONTHS, *_HOUR_WORDS]
    + str.split("tomorrow today tonight pasado manana demain morgen ubermorgen amanha domani dopodomani heute hoje oggi hoy"
    " aujourd week weekend semana semaine woche settimana prochaine proxima prossima nachste naechste kommende"
    " noon midday mediodia midi mittag mezzogiorno morning afternoon evening tarde noche soir matin apres abends"
    " nachmittags noite sera pomeriggio mattina manha minutes hours horas heures stunden minuten minuti minutos"
    " after before until around about despues antes vers avant nach gegen depois dopo prima alle")
)


def _alternatives(words: object) -> str:
    return "|".join(sorted(map(regex.escape, words), key=len, reverse=True))  # type: ignore[call-overload]


_B, _E = r"(?<![^ ])", r"(?![^ ])"
_NUM = r"\d{1,2}"
_HOUR = rf"(?:{_NUM}|{_alternatives(_HOUR_WORDS)})"
_MONTH = _alternatives(_MONTHS)
# Portuguese month abbreviations that are also English words only count after the day: "2 de out".
_MONTH_LEAD = _alternatives(m for m in _MONTHS if m not in ("out", "set"))
# Portuguese weekdays that are also ordinals ("a segunda opção", Spanish "la quinta").
_ORDINAL_WEEKDAYS = frozenset({"segunda", "terca", "quarta", "quinta"})
_NOT_OPTION = r"(?! (?:feira )?(?:opcao|opcion|opzione|option|op|vez|alternativa|volta|one)\b)"

_DAY = regex.compile(
    _B + r"(?:"
    r"(?P<after>day after (?:tomorrow|tmrw|tmr|tomorow)|pasado manana|apres demain|ubermorgen|uebermorgen"
    r"|depois de amanha|dopodomani|dopo domani)"
    r"|(?P<tomorrow>tomorrow|tomorow|tommorow|tommorrow|tomorro|tmrw|tmr|tmrow|tmw|tomoz|2morrow|2moro|2mrw|2morow"
    r"|(?<!(?:la|esta|por) )manana|demain|(?<!(?:heute|guten|jeden|am|den|dem) )morgen|amanha|domani)"
    r"|(?P<today>today|tday|2day|todays|tonight|tonite|2nite|hoy|aujourd hui|aujourdhui|auj|ajd|heute|hoje|oggi"
    r"|this (?:morning|afternoon|evening|arvo)|esta (?:noche|tarde|manana)|ce (?:soir|matin)|cet apres midi|ce midi"
    r"|esta noite|stasera|stamattina|stanotte|questo pomeriggio)"
    r"|(?P<nextweek>next week|nxt week|(?:la )?semana que viene|(?:la )?proxima semana|(?:la )?semaine prochaine"
    r"|semaine pro|(?:nachste|naechste|kommende|nachsten|naechsten|kommenden) woche|semana que vem"
    r"|(?:la )?settimana prossima|(?:la )?prossima settimana)"
    r"|(?P<weekend>weekend|week end|fin de semana|finde|wochenende|fim de semana|fine settimana|finesettimana)"
    r"|(?:in|en|dans|em|tra|fra) (?P<days>\d{1,2}|" + _alternatives(_COUNT_WORDS) + r") (?:days|dias|jours|tagen|giorni)"
    r"|(?P<weekday>" + _alternatives(_WEEKDAYS) + r")s?" + _NOT_OPTION + r"(?: feira)?"
    r"|(?P<short>mon|sat|sun)(?= \d| at| ,| \?|$| morning| afternoon| evening| or| and| night)"
    r"|(?!24/7|1/2)(?P<dmy>\d{1,2})/(?P<dmy_b>\d{1,2})(?:/(?P<dmy_y>\d{2,4}))?"
    r"|(?P<dotted>\d{1,2})\.(?P<dotted_m>\d{1,2})\.(?P<dotted_y>\d{2,4})?"
    r"|(?P<mday>\d{1,2})(?:st|nd|rd|th|er|eme|\.)? (?:de |of )?(?P<mday_m>" + _MONTH + r")(?! of)(?: (?:de )?(?P<mday_y>\d{4}))?"
    r"|(?P<month>" + _MONTH_LEAD + r") (?:the )?(?P<month_d>\d{1,2})(?:st|nd|rd|th)?(?![:h\d])"
    # A day of the month on its own: "the 14th", "on the 2nd of this month", "el día 14", "am 14.".
    r"|(?P<nth>\d{1,2})(?:st|nd|rd|th)(?: of (?P<nth_next>next )?(?:this |the )?month)?(?! (?:of|de|floor|street|st|ave|place|time|row|grade|century|anniversary|birthday)(?![^ ]))"
    r"|(?:(?:el |le |il |o )?(?:dia|jour|giorno) |(?<=(?:^| )(?:am|den|on the|for the|the) ))(?P<nth_word>\d{1,2})(?:\.|st|nd|rd|th|er|eme)?"
    r"(?! (?:h|uhr|de (?:" + _MONTH + r")|" + _MONTH + r"|of|am|pm|a m|p m|people|personas|personnes|persone|pessoas|personen|ppl|guests|minutes?|mins?|hours?|hrs?|days?|o clock|tickets?)(?![^ ]))(?! ?[:/\d])"
    r")" + _E
)

_PM_WORDS = regex.compile(
    _B + r"(?:evening|tonight|tonite|afternoon|noche|tarde|soir|apres midi|aprem|abends|abend|nachmittags"
    r"|nachmittag|noite|sera|stasera|pomeriggio)" + _E
)
_AM_WORDS = regex.compile(
    _B + r"(?:morning|(?:de|por|en) la manana|matin|morgens|vormittags|vormittag|fruh|frueh|(?:de|da) manha|mattina"
    r"|mattino|stamattina)" + _E
)
_CUE = (
    r"(?:at|around|arround|round|about|abt|by|after|before|till|til|until|like|from|ca|a las|a la|las|sobre las"
    r"|hacia las|despues de las|despues de la|antes de las|a eso de las|tipo|as|pelas|depois das|antes das"
    r"|a partir das|vers|apres|avant|a partir de|um|ab|nach|gegen|bis|vor|alle|alle ore|verso|dopo le"
    r"|prima delle|dalle|per le|entre las|para las|pra|para as)"
)
_TIME = regex.compile(
    _B + r"(?:"
    r"(?P<in>(?:in|en|dans|em|tra|fra) (?P<in_n>\d{1,3}|" + _alternatives(_COUNT_WORDS) + r"|half an|1/2)"
    r" (?P<in_u>hours?|hrs?|horas?|heures?|stunden?|stunde|ore|ora|minutes?|mins?|minutos?|minuten|minuti))"
    r"|(?P<noon>noon|midday|mediodia|medio dia|midi|mittag|mittags|meio dia|meiodia|mezzogiorno|mezzodi)"
    r"|(?:half past|half) (?P<half>" + _HOUR + r")(?![:h\d])"
    r"|(?:a )?quarter (?:past|after) (?P<qpast>" + _HOUR + r")(?![:h\d])"
    r"|(?:a )?quarter (?:to|til|till|of|before) (?P<qto>" + _HOUR + r")(?![:h\d])"
    # "2 in the afternoon", "ten in the morning", "5 de la tarde"; "afternoon 3", "evening 7".
    r"|(?P<pod>" + _HOUR + r")(?= (?:in the |at |de la |del |da |della |di |du |de |am |in der )?(?:morning|afternoon|evening|night|tarde|manana|noche|matin|soir|apres midi|nachmittags?|abends?|vormittags?|morgens|pomeriggio|mattina|sera|noite|manha)(?![^ ]))"
    r"|(?<=(?:morning|afternoon|evening|night|tarde|manana|noche|matin|soir|apres midi|nachmittags?|abends?|vormittags?|morgens|pomeriggio|mattina|sera|noite|manha) )(?P<podb>" + _HOUR + r")\.?(?![^ ])(?! ?[\d/])(?! (?:of|de|days?)(?![^ ]))"
    r"|halb (?P<halb>\d{1,2})(?![:h\d])"
    r"|(?P<hm>\d{1,2})[:h](?P<hm_m>\d{2})(?P<hm_x>am|pm|h)?"
    r"|(?P<hx>\d{1,2})(?P<hx_x>am|pm|h)"
    r"|(?:" + _CUE + r" )?(?P<dot>\d{1,2})\.(?P<dot_m>\d{2}) (?:uhr|h)"
    r"|um (?P<um>\d{1,2})\.(?P<um_m>\d{2})"
    r"|(?P<hs>" + _HOUR + r") (?P<hs_x>am(?! (?:\w+tag|\d|morgen|abend|nachmittag|vormittag|wochenende|ende|samstag|sonnabend))"
    r"|pm|a m|p m|uhr|o clock|oclock|heures?|hs)"
    r"|" + _CUE + r" (?:the |ore |las )?(?P<cue>" + _HOUR + r")(?:\.|,)?(?! ?(?:\d|/|de (?:" + _MONTH + r")|(?:" + _MONTH + r")"
    r"|days?|dias|jours|tagen|giorni|minutes?|mins?|people|personas|ppl|hrs? (?:later|earlier)))"
    r")" + _E
)
_HALF_EXTRA = regex.compile(r"(?P<plus> (?:y|et|e|und) (?:media|demie|demi|mezza|meia|cuarto|quart|un quarto|quarto))?")
_BARE_HOUR = regex.compile(r" (?P<h>\d{1,2})\.?(?! ?(?:de |of |/|\.\d|" + _MONTH + r"))(?![^ ])")


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    day: date | None = None
    clock: time | None = None
    instant: datetime | None = None
    weekday: int | None = None
    next_week: bool = False


def month_first(language: str, zone: str) -> bool:
    """Whether "12/3" is December 3rd: English written in the Americas."""
    return language == "en" and zone.startswith(("America/", "US/", "Canada/", "Pacific/Honolulu"))


def find_when(
    words: str, now: datetime, zone: tzinfo, *, month_first: bool = False, hour_after_day: bool = True,
    day_in_context: date | None = None,
) -> datetime | date | None:
    """The day (a `date`) or instant (an aware `datetime` in `zone`) `words` proposes, if any.

    `words` is `Reply.words`; `now` must be aware. Never earlier than the local start of
    `now`'s day. A time said without a day ("make it 4:30") falls on `day_in_context` (the day
    the message answered proposed) when there is one, else on its next occurrence.
    """
    local_now = now.astimezone(zone)
    today = local_now.date()
    days = [m for m in _days(words, today, month_first=month_first) if m.day is not None]
    times = _times(words, local_now, days, hour_after_day=hour_after_day)
    # "the 12th and not tomorrow", "at 5 instead of 3": what is turned down is not proposed.
    days = [m for m in days if not _turned_down(words, m.start)] or days
    times = [m for m in times if not _turned_down(words, m.start)] or times
    instants = [m for m in times if m.instant is not None]
    clocks = [m for m in times if m.clock is not None]
    if instants and not days:
        return instants[-1].instant
    if not days:
        if not clocks:
            return None
        clock = clocks[-1].clock  # "can't at 3, how about 5": the last time said is the proposal
        assert clock is not None
        if day_in_context is not None and day_in_context >= today:
            return _at(day_in_context, clock, zone)
        day = today if clock > local_now.time().replace(tzinfo=None) else today + timedelta(days=1)
        return _at(day, clock, zone)
    chosen = days[-1]
    assert chosen.day is not None
    day = chosen.day
    if chosen.weekday is not None and any(m.next_week for m in days):
        day = _next_monday(today) + timedelta(days=chosen.weekday)
    elif chosen.next_week and any(m.weekday is not None for m in days):
        weekday = next(m.weekday for m in days if m.weekday is not None)
        assert weekday is not None
        day = _next_monday(today) + timedelta(days=weekday)
    if not clocks:
        return day
    after = [m for m in clocks if m.start >= chosen.end]
    clock = (after[0] if after else clocks[-1]).clock
    assert clock is not None
    return _at(day, clock, zone)


def find_day(words: str, today: date, *, month_first: bool = False) -> date | None:
    """The first day `words` names ("on March 10th", "tomorrow"), ignoring clock times.

    A message naming two days ("from March 7th until March 11th") is mostly about the first.
    """
    days = [m.day for m in _days(words, today, month_first=month_first) if m.day is not None]
    return days[0] if days else None


_TURNED_DOWN = regex.compile(
    r"(?:not|instead of|rather than|no|nicht|statt|anstatt|pas|plutot que|au lieu de|en vez de|en lugar de|no el|no a las"
    r"|em vez de|nao|invece di|anziche|non)(?: (?:by|on|at|for|the|el|la|le|il|a|as|am|um|alle|las|o))* $"
)


def _turned_down(words: str, start: int) -> bool:
    """Whether what starts at `start` comes right after a "not" ("not tomorrow", "instead of 3")."""
    return _TURNED_DOWN.search(words[max(0, start - 30):start]) is not None


def _at(day: date, clock: time, zone: tzinfo) -> datetime:
    # Through UTC and back, so a wall time in a DST gap lands on the first real instant after it.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC).astimezone(zone)


def _next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


def _days(words: str, today: date, *, month_first: bool) -> list[_Mention]:
    found: list[_Mention] = []
    for m in _DAY.finditer(words):
        start, end = m.span()
        if m["after"]:
            found.append(_Mention(start, end, today + timedelta(days=2)))
        elif m["tomorrow"]:
            found.append(_Mention(start, end, today + timedelta(days=1)))
        elif m["today"]:
            found.append(_Mention(start, end, today))
        elif m["nextweek"]:
            found.append(_Mention(start, end, _next_monday(today), next_week=True))
        elif m["weekend"]:
            found.append(_Mention(start, end, _next_weekday(today, 5)))
        elif m["days"]:
            count = _COUNT_WORDS.get(m["days"]) or int(m["days"])
            found.append(_Mention(start, end, today + timedelta(days=count)))
        elif m["weekday"] in _ORDINAL_WEEKDAYS and words[:start].split()[-1:] in (["la"], ["el"], ["lo"], ["the"], ["a"], ["o"]):
            continue
        elif m["weekday"] or m["short"]:
            weekday = _WEEKDAYS.get(m["weekday"] or "", _SHORT_WEEKDAYS.get(m["short"] or "", 0))
            found.append(_Mention(start, end, _next_weekday(today, weekday), weekday=weekday))
        elif m["dmy"]:
            a, b = int(m["dmy"]), int(m["dmy_b"])
            month, day = (a, b) if (month_first and a <= 12) or b > 12 else (b, a)
            found.append(_Mention(start, end, _calendar(today, month, day, m["dmy_y"])))
        elif m["dotted"]:
            found.append(_Mention(start, end, _calendar(today, int(m["dotted_m"]), int(m["dotted"]), m["dotted_y"])))
        elif m["mday"]:
            found.append(_Mention(start, end, _calendar(today, _MONTHS[m["mday_m"]], int(m["mday"]), m["mday_y"])))
        elif m["month"]:
            found.append(_Mention(start, end, _calendar(today, _MONTHS[m["month"]], int(m["month_d"]), None)))
        elif m["nth"] or m["nth_word"]:
            found.append(_Mention(start, end, _day_of_month(today, int(m["nth"] or m["nth_word"]), bool(m["nth_next"]))))
    return found


def _day_of_month(today: date, day: int, next_month: bool) -> date | None:
    """That day of this month, or of the next month when it has passed (or is asked for)."""
    year, month = today.year, today.month
    for _ in range(3):
        if next_month:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            next_month = False
            continue
        try:
            found = date(year, month, day)
        except ValueError:
            found = None
        if found is not None and found >= today:
            return found
        next_month = True
    return None


def _next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def _calendar(today: date, month: int, day: int, year: str | None) -> date | None:
    """The date, in the given year or else the next such date from today; None if there is none."""
    try:
        if year is not None:
            full = int(year) + (2000 if len(year) == 2 else 0)
            found = date(full, month, day)
            return found if found >= today else None
        found = date(today.year, month, day)
        return found if found >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _times(words: str, local_now: datetime, days: list[_Mention], *, hour_after_day: bool) -> list[_Mention]:
    found: list[_Mention] = []
    for m in _TIME.finditer(words):
        start, end = m.span()
        if m["in"]:
            amount = m["in_n"]
            count = 0.5 if amount in ("half an", "1/2") else _COUNT_WORDS.get(amount) or int(amount)
            unit = m["in_u"]
            delta = timedelta(minutes=count) if unit.startswith("min") else timedelta(hours=count)
            found.append(_Mention(start, end, instant=(local_now + delta).replace(second=0, microsecond=0)))
            continue
        if m["noon"]:
            found.append(_Mention(start, end, clock=time(12, 0)))
            continue
        hour, minute, meridiem = _clock_parts(m)
        extra = _HALF_EXTRA.match(words, end)
        if extra is not None and extra["plus"]:
            minute = 15 if extra["plus"].split()[-1] in ("cuarto", "quart", "quarto") else 30
            end = extra.end()
        clock = _clock(hour, minute, meridiem or _meridiem(words, start, end))
        if clock is not None:
            found.append(_Mention(start, end, clock=clock))
    if hour_after_day:
        # "thurs 4", "tomorrow 5": a bare hour right after a day is a time (in English and
        # German; in Romance languages "jueves 4" is a day of the month).
        taken = {m.start for m in found}
        for day in days:
            bare = _BARE_HOUR.match(words, day.end)
            if bare is not None and bare.start("h") not in taken:
                clock = _clock(int(bare["h"]), 0, _meridiem(words, bare.start("h"), bare.end()))
                if clock is not None:
                    found.append(_Mention(bare.start("h"), bare.end(), clock=clock))
    return sorted(found, key=lambda m: m.start)


def _clock_parts(m: regex.Match[str]) -> tuple[int, int, str | None]:
    if m["half"]:
        return _hour_number(m["half"]), 30, None
    if m["qpast"]:
        return _hour_number(m["qpast"]), 15, None
    if m["qto"]:
        hour = _hour_number(m["qto"])
        return (hour - 1) % 12 or 12, 45, None
    if m["pod"] or m["podb"]:
        return _hour_number(m["pod"] or m["podb"]), 0, None
    if m["halb"]:
        return int(m["halb"]) - 1, 30, None
    if m["hm"]:
        return int(m["hm"]), int(m["hm_m"]), _meridiem_word(m["hm_x"])
    if m["hx"]:
        return int(m["hx"]), 0, _meridiem_word(m["hx_x"])
    if m["dot"]:
        return int(m["dot"]), int(m["dot_m"]), "24h"
    if m["um"]:
        return int(m["um"]), int(m["um_m"]), None
    if m["hs"]:
        return _hour_number(m["hs"]), 0, _meridiem_word(m["hs_x"])
    return _hour_number(m["cue"]), 0, None


def _hour_number(token: str) -> int:
    return _HOUR_WORDS[token] if token in _HOUR_WORDS else int(token)


def _meridiem_word(word: str | None) -> str | None:
    if word in ("pm", "p m"):
        return "pm"
    if word in ("am", "a m"):
        return "am"
    return None


def _meridiem(words: str, start: int, end: int) -> str | None:
    """am / pm from a part-of-day word in the few tokens around a time ("5 de la tarde")."""
    for window in (" ".join(words[end:].split()[:4]), " ".join(words[:start].split()[-3:])):
        if _PM_WORDS.search(window):
            return "pm"
        if _AM_WORDS.search(window):
            return "am"
    return None


def _clock(hour: int, minute: int, meridiem: str | None) -> time | None:
    if not (0 <= minute < 60) or not (0 <= hour <= 24):
        return None
    if meridiem == "pm" and 1 <= hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    elif meridiem is None and 1 <= hour <= 7:
        hour += 12  # business hours: "at 4" is 16:00
    if hour == 24:
        hour = 0
    return time(hour, minute)
