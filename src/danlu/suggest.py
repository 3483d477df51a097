"""The one "did you mean" hint that every unknown-name error puts after the name."""
import difflib
from collections.abc import Iterable

# difflib's similarity ratio a choice needs to be offered: 'epochs' for 'epoch', not 'reprob'.
CUTOFF = 0.6
MAX_SUGGESTIONS = 3


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean a or b?)' naming the choices closest to `name`, best first, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=MAX_SUGGESTIONS, cutoff=CUTOFF)
    return f" (did you mean {' or '.join(close)}?)" if close else ""
