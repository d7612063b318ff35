"""Two-panel before/after collages: find the cut, and the two crop boxes it makes.

Detection looks at the grey working image (longest side 512) for, in order of confidence:
a divider (a thin band of uniform colour across the whole image near the middle), a hard seam
(a jump in brightness along a full line that the rest of the image does not have), two halves
of similar content meeting at the middle with a visible step, or a join (a line near the middle
where most rows jump more than at the columns beside it: two photos pasted edge to edge).

Captions ("before"/"after", "antes"/"después", "vorher"/"nachher", "avant"/"après",
"pre"/"post") are read with OCR (``captions``; ``textlines`` is its cheap pre-check) when the
RGB image is given and Tesseract is there, and only where they can change the outcome: on a
found cut, to tell which panel is "before"; on a weak join with caption-like lines in both
halves, to make the cut. Without captions the left/top panel is taken as "before" with a
modest confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

from furrsight.images import captions, textlines
from furrsight.images.analysis import as_gray8

FIRST_IS_BEFORE_CONFIDENCE = 0.6  # the usual layout, not read from captions
READ_ORDER_CONFIDENCE = 0.95  # both panels' captions read and agreeing
ONE_CAPTION_CONFIDENCE = 0.85  # one panel's caption read
CAPTIONS_CUT_CONFIDENCE = 0.8  # a weak join that captions on both sides confirm
_MIDDLE = (0.3, 0.7)  # where a cut may be, as a share of the side
_JOIN_MIDDLE = (0.42, 0.58)  # a join (no divider, no seam) is looked for nearer the middle
_JOIN_SHARE = 0.33  # rows that jump at the join more than beside it (ordinary photos: < 0.28)
_WEAK_JOIN_SHARE = 0.2  # enough, with captions on both sides, to read them


@dataclass(frozen=True)
class Cut:
    direction: str  # vertical: panels side by side; horizontal: stacked
    start: float  # where the first panel ends (share of the side)
    end: float  # where the second begins (after a divider; == start for a seam)
    confidence: float
    method: str  # divider, seam, similar_halves, join, captions, manual
    first: str = "before"  # what the left/top panel is
    order_confidence: float = FIRST_IS_BEFORE_CONFIDENCE


@dataclass(frozen=True)
class _Lines:
    """One direction of the grey image (columns are the candidate cuts) and the brightness steps
    between neighbouring columns, computed once and shared by every finder: each used to compute
    the same differences again (detect took 5 ms a photo; 2 with this)."""

    g: np.ndarray  # the grey image (uint8), or its transpose
    e: np.ndarray  # |difference| between neighbouring columns, per row (uint8)
    step: np.ndarray  # the mean step at each column
    std: np.ndarray  # the standard deviation of each column a divider may lie on (``_spreads``)
    typical: float  # the median step
    joins: list[tuple[np.ndarray, int, float]] = field(default_factory=list, compare=False)  # _peaks, once

    def strong(self, columns: slice) -> np.ndarray:
        """The share of rows stepping more than 25 at these columns. Only a few columns are ever
        asked about (a seam's, the middle's), so it is counted there, not over the whole image
        (a threshold and a sum of every step, for both views: 0.04 ms a photo)."""
        e = self.e[:, columns]
        return np.count_nonzero(e > 25, axis=0) / e.shape[0]


def _means(a: np.ndarray, axis: int) -> np.ndarray:
    """The mean of each column (axis 0) or row (axis 1) of a uint8 image: integer sums (OpenCV,
    a fifth of the time of its float64 average), times 1/n in float64 as OpenCV's average does,
    so the values are exactly those of the float image's ``REDUCE_AVG``."""
    return cv2.reduce(a, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() * (1.0 / a.shape[axis])


def _spreads(g8: np.ndarray, axis: int) -> np.ndarray:
    """The standard deviation of each column (axis 0) or row (axis 1) a divider can lie on, for
    ``_divider``; +inf elsewhere (never uniform). A divider starts in the middle (``_MIDDLE``)
    and is narrow (at most a tenth of the side, or 2): a band of uniform lines reaching past
    the last line computed here is wider than that whether it ends there or further on, so
    ``_divider`` answers as it would with every line's spread. Computed on these lines alone
    (half of them), from integer sums: exact, as the float image's own."""
    size = g8.shape[1 - axis]
    lo, hi = int(size * _MIDDLE[0]), int(size * _MIDDLE[1])
    last = min(size, hi + max(2, size // 10))
    band = g8[:, lo:last] if axis == 0 else g8[lo:last]
    squared = np.square(band, dtype=np.uint16)
    scale = 1.0 / g8.shape[axis]
    mean = _means(band, axis)
    square = squared.sum(axis=axis, dtype=np.uint32) * scale  # exact below 66,000 px a line
    spread = np.full(size, np.inf)
    spread[lo:last] = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return spread


def _overall_std(g8: np.ndarray) -> float:
    """The whole image's standard deviation, from its sum and its sum of squares (integers,
    exact in float64)."""
    n = g8.size
    mean = cv2.sumElems(g8)[0] / n
    return float(np.sqrt(max(cv2.norm(g8, cv2.NORM_L2SQR) / n - mean * mean, 0.0)))


def _median(a: np.ndarray) -> float:
    """``np.median`` of a 1-d array, the same value without its generic machinery (a fifth of
    the time on a line profile)."""
    k = a.size // 2
    if a.size % 2:
        return float(np.partition(a, k)[k])
    low, high = np.partition(a, (k - 1, k))[k - 1 : k + 1]
    return float((low + high) / 2)


def _lines(g8: np.ndarray) -> _Lines:
    e = cv2.absdiff(g8[:, 1:], g8[:, :-1])
    step = _means(e, 0)
    return _Lines(g8, e, step, _spreads(g8, 0), _median(step))


def _rows(g8: np.ndarray) -> _Lines:
    """``_lines`` of the transposed image, computed along the rows of ``g8`` itself (contiguous
    memory; OpenCV cannot take a transposed view), then handed out as transposed views."""
    d = cv2.absdiff(g8[1:], g8[:-1])
    step = _means(d, 1)
    return _Lines(g8.T, d.T, step, _spreads(g8, 1), _median(step))


def _views(g8: np.ndarray) -> tuple[_Lines, _Lines] | None:
    """Side by side (cuts are columns) and stacked (cuts are rows: the transposed image); None
    for an image too small or too plain to be two photos.

    The sums over whole lines are taken on the uint8 image (``g8``, or ``g``'s whole tones):
    a quarter of the memory to stream through, integer sums, the same values to the last bit
    (0.25 ms a photo where the float32 image took 0.6). Every finder works on it too: the few
    lines a divider or two halves need are made float32 where they are looked at (a float32
    copy of the whole image cost 0.1-0.25 ms a photo that most never needed); the lines'
    spreads only where a divider can be (``_spreads``)."""
    if min(g8.shape) < 32 or _overall_std(g8) < 5:
        return None
    return _lines(g8), _rows(g8)


def _contrasted(g: np.ndarray, first: int, last: int, left: int, right: int) -> bool:
    """A divider stands out from both panels along most of its length (a plain background line
    in a photo does not: its neighbours are the same background)."""
    band = g[:, first : last + 1].astype(np.float32).mean(axis=1)
    return all(float((np.abs(g[:, side].astype(np.float32) - band) > 20).mean()) > 0.5 for side in (left, right))


def _divider(lines: _Lines) -> Cut | None:
    g = lines.g
    w = g.shape[1]
    lo, hi = int(w * _MIDDLE[0]), int(w * _MIDDLE[1])
    uniform = lines.std < 6.0
    x = lo
    for start in (np.flatnonzero(uniform[lo:hi]) + lo).tolist():  # a photo has few uniform columns
        if start < x:
            continue  # inside a band already looked at
        x, end = start, start
        while end + 1 < w and uniform[end + 1]:
            end += 1
        left, right = x - 2, end + 2
        narrow = end - x + 1 <= max(2, w // 10)
        if narrow and left >= 0 and right < w and _contrasted(g, x, end, left, right):
            return Cut("vertical", x / w, (end + 1) / w, 0.9, "divider")
        x = end + 1
    return None


def _alone(profile: np.ndarray, i: int) -> bool:
    """A cut is one line, not one of a row of lines like it (stripes, a fence, a pattern): above
    the profile's median (a texture's level), at most one other group of columns farther than 3
    from the cut comes within 60 % of it (measured: 80 % let striped wallpapers through)."""
    excess = profile - _median(profile)
    close = [x for x in np.flatnonzero(excess >= 0.6 * float(excess[i])).tolist() if abs(x - i) > 3]
    groups = sum(1 for k, x in enumerate(close) if k == 0 or x - close[k - 1] > 3)
    return groups <= 1


def _seam(lines: _Lines) -> Cut | None:
    w = lines.g.shape[1]
    step = lines.step
    lo, hi = int(w * _MIDDLE[0]), int(w * _MIDDLE[1])
    typical = lines.typical + 1e-3
    x = lo + int(np.argmax(step[lo:hi]))
    if float(lines.strong(slice(x, x + 1))[0]) > 0.6 and step[x] > 5 * typical and _alone(step[lo:hi], x - lo):
        return Cut("vertical", (x + 1) / w, (x + 1) / w, 0.75, "seam")
    return None


def _similar_halves(lines: _Lines) -> Cut | None:
    g = lines.g
    w = g.shape[1]
    mid = w // 2
    step = lines.step
    near = slice(mid - 2, mid + 2)
    if step[near].max() < 3 * (lines.typical + 1e-3) or lines.strong(near).max() < 0.35:
        return None
    left, right = g[:, :mid], g[:, w - mid :]

    def small(a: np.ndarray) -> np.ndarray:
        ys = np.linspace(0, a.shape[0] - 1, 16).astype(int)
        xs = np.linspace(0, a.shape[1] - 1, 16).astype(int)
        v = a[np.ix_(ys, xs)].ravel().astype(np.float32)
        return (v - v.mean()) / (v.std() + 1e-3)

    corr = float(np.mean(small(left) * small(right)))
    return Cut("vertical", 0.5, 0.5, 0.65, "similar_halves") if corr > 0.8 else None


def join_score(lines: _Lines, alone: bool = True) -> tuple[float, float, float]:
    """Where near the middle most rows jump more than at the two columns on each side: the
    share of rows that do, the position (share of the width), the least share over the four
    quarters of the height (a join runs the whole height; an object's edge does not). A join is
    one line: when other columns nearby come close, it is a pattern and the score is 0 (unless
    ``alone`` is False)."""
    w = lines.g.shape[1]
    if not lines.joins:
        lines.joins.append(_peaks(lines))
    share, lo, quarters = lines.joins[0]
    if not len(share):
        return 0.0, 0.5, 0.0
    i = int(np.argmax(share))
    if alone and not _alone(share, i):
        return 0.0, 0.5, 0.0
    return float(share[i]), (lo + i + 1) / w, quarters


def _peaks(lines: _Lines) -> tuple[np.ndarray, int, float]:
    """For each column near the middle, the share of rows stepping more there than at the two
    columns on each side; the first such column; the best column's least share over quarters.

    In uint8 with OpenCV, where numpy took a signed copy: a saturating ``beside + 4`` (255 at
    most) answers "step > beside + 4" exactly as the signed sum did. The stacked view's band is
    a block of rows of the untransposed image (contiguous), its candidates the rows."""
    w, e = lines.g.shape[1], lines.e
    lo, hi = max(int(w * _JOIN_MIDDLE[0]), 3), min(int(w * _JOIN_MIDDLE[1]) + 1, w - 4)
    if hi <= lo:
        return np.zeros(0), lo, 0.0
    m = hi - lo
    rows_are_lines = not e.flags.c_contiguous and e.T.flags.c_contiguous
    band = e.T[lo - 2 : hi + 2] if rows_are_lines else e[:, lo - 2 : hi + 2]

    def at(k: int) -> np.ndarray:  # the candidates' neighbours k - 2 away
        return band[k : k + m] if rows_are_lines else band[:, k : k + m]

    beside = cv2.max(cv2.max(cv2.max(at(0), at(1)), at(3)), at(4))  # columns x-2, x-1, x+1, x+2
    higher = cv2.add(beside, 4)  # type: ignore[call-overload]  # a scalar: OpenCV takes it, its stubs do not say
    peak = cv2.compare(at(2), higher, cv2.CMP_GT)  # 255 where a row steps more
    across = 1 if rows_are_lines else 0
    share = (cv2.reduce(peak, across, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() // 255) / peak.shape[across]
    i = int(np.argmax(share))
    best = peak[i] if rows_are_lines else peak[:, i]
    return share, lo, _least_quarter(best)


def _least_quarter(best: np.ndarray) -> float:
    """The least share of non-zero values over the four quarters of ``best`` (as
    ``np.array_split`` cuts them: the first ones a value longer when the length is not a
    multiple of four), without its copies (a third of ``_peaks``' time)."""
    size, extra = divmod(best.size, 4)
    least, start = 1.0, 0
    for quarter in range(4):
        end = start + size + (quarter < extra)
        least = min(least, np.count_nonzero(best[start:end]) / (end - start))
        start = end
    return least


def _join(lines: _Lines) -> Cut | None:
    share, x, quarters = join_score(lines)
    if share >= _JOIN_SHARE and quarters >= 0.1:
        return Cut("vertical", x, x, min(0.85, 0.65 + share - _JOIN_SHARE), "join")
    return None


def _detect_vertical(lines: _Lines) -> Cut | None:
    for finder in (_divider, _seam, _similar_halves, _join):
        cut = finder(lines)
        if cut:
            return cut
    return None


def _turned(cut: Cut) -> Cut:
    return replace(cut, direction="horizontal")


def layout(g: np.ndarray) -> Cut | None:
    """The most confident cut found from the picture alone (no captions)."""
    views = _views(as_gray8(g, None))
    return _layout(views) if views else None


def _layout(views: tuple[_Lines, _Lines]) -> Cut | None:
    side_view, stacked_view = views
    found = []
    side = _detect_vertical(side_view)
    if side:
        found.append(side)
    stacked = _detect_vertical(stacked_view)
    if stacked:
        found.append(_turned(stacked))
    return max(found, key=lambda c: c.confidence) if found else None


def detect(
    g: np.ndarray | None, rgb: Image.Image | np.ndarray | None = None, g8: np.ndarray | None = None
) -> Cut | None:
    """The most confident cut of a grey working image into two panels, or None for an ordinary
    photo. With ``rgb`` (the same image in colour, as an image or an array: only whether it is
    given matters, OCR reads the grey one) and Tesseract installed, captions are read
    where they can change the outcome: they set the order of a found cut, and make a cut of a
    weak join that has caption-like lines in both halves. Without, the layout alone decides.
    ``g`` holds whole grey tones 0-255 (as OpenCV's and Pillow's grey conversions make them);
    ``g8`` is the same as uint8, when the caller has it (then ``g`` may be None: the float32
    image is made only if OCR is to read it)."""
    g8 = as_gray8(g, g8)
    views = _views(g8)
    if views is None:
        return None
    cut = _layout(views)
    if rgb is None or not captions.available():
        return cut
    # Without a cut, the cheap pre-checks first: a hint of a join (then caption-like lines on
    # both sides). Most photos have neither, and make no float32 copy for OCR (0.05 ms).
    weak = _weak_join(views) if cut is None else None
    if cut is None and weak is None:
        return None
    g = g if g is not None else g8.astype(np.float32)
    if cut is not None:  # the order: OCR of the panels' top and bottom quarters
        return _ordered(cut, captions.read_panels(g, _panels(cut, g.shape)), read_only=False)
    assert weak is not None
    h, w = g.shape
    bands = textlines.paired(textlines.text_bands(g), h, w, weak.direction, weak.start)
    if not bands:
        return None
    return _ordered(weak, captions.read_panels(g, _panels(weak, g.shape), near=bands, both=True), read_only=True)


def _weak_join(views: tuple[_Lines, _Lines]) -> Cut | None:
    best = None
    for direction, lines in zip(("vertical", "horizontal"), views, strict=True):
        share, x, quarters = join_score(lines, alone=False)  # captions will confirm it
        if share >= _WEAK_JOIN_SHARE and quarters >= 0.05 and (best is None or share > best[0]):
            best = (share, Cut(direction, x, x, CAPTIONS_CUT_CONFIDENCE, "captions"))
    return best[1] if best else None


def _panels(cut: Cut, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    h, w = shape[0], shape[1]
    return [(b[0], b[1], b[2], b[3]) for b in boxes(cut, w, h)]


def _ordered(cut: Cut, words: list[tuple[int, captions.Word]], read_only: bool) -> Cut | None:
    """The cut with the order its captions tell; with ``read_only``, None unless both panels'
    captions were read and agree (a cut made from captions needs both)."""
    kinds = [{w.kind for i, w in words if i == panel} for panel in (0, 1)]
    says = [k.pop() if len(k) == 1 else None for k in kinds]  # a panel with both words says nothing
    first_before = (says[0] == "before") + (says[1] == "after")
    first_after = (says[0] == "after") + (says[1] == "before")
    if first_before == first_after or (read_only and max(first_before, first_after) < 2):
        return None if read_only else cut
    confidence = READ_ORDER_CONFIDENCE if max(first_before, first_after) == 2 else ONE_CAPTION_CONFIDENCE
    return replace(cut, first="before" if first_before > first_after else "after", order_confidence=confidence)


def boxes(cut: Cut, width: int, height: int) -> list[list[int]]:
    """The two panels' [left, top, right, bottom] boxes in the full upright image."""
    if cut.direction == "vertical":
        a, b = round(cut.start * width), round(cut.end * width)
        return [[0, 0, a, height], [b, 0, width, height]]
    a, b = round(cut.start * height), round(cut.end * height)
    return [[0, 0, width, a], [0, b, width, height]]
