"""What the ranking browser draws, as HTML: thumbnails, tiles, a run's row of ranked
gallery images, the ground-truth strip, the header, the summary, the query list's rows and
the scatter of AP(A) against AP(B).

Functions of one setting and gallery trial's rankings (`fmcnet.viz.rankings.Ranked`) and
per-query table (`fmcnet.viz.query_table.QueryTable`), without widgets:
`fmcnet.viz.browser` puts what they return into its widgets. Where the tests read what is
on screen (tiles, strip items), a function returns those records beside its HTML.

Speed: thumbnails are inlined as base64 JPEGs, encoded once per image (`Thumbs`), so the
whole query panel is one string; the list rows and the scatter are numpy string
operations over all queries at once.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmcnet.viz.figures import MATCH_COLOR, MISS_COLOR, ImageSource
from fmcnet.viz.query_table import QueryTable
from fmcnet.viz.rankings import Ranked, SettingData, Side

REMOVED_COLOR = "#7f7f7f"  # grey, dashed: an image the protocol removed


def _thumbnail(img: np.ndarray, height: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(img)
    w = max(1, round(im.width * height / im.height))
    buf = io.BytesIO()
    im.resize((w, height), Image.BILINEAR).save(buf, format="JPEG", quality=88)
    return buf.getvalue()


class Thumbs:
    """JPEG thumbnails, encoded once and shared by every run (keyed by image path)."""

    def __init__(self, height: int = 128):
        self.height = height
        self._cache: dict[Any, str] = {}

    def b64(self, images: ImageSource, paths: list[str], i: int) -> str:
        key = paths[i] or (id(images), i)
        if key not in self._cache:
            self._cache[key] = base64.b64encode(_thumbnail(images[i], self.height)).decode()
        return self._cache[key]


def pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.1f}%"


@dataclass
class TrialImages:
    """`<img>` tags of one gallery trial's items, by their numbers in the trial's lists.

    Drawn from run A's setting: run B, when compared, ranks the same images (checked by
    `SettingData.same_images`), so its tiles show A's thumbnails.
    """

    setting: SettingData
    a: Ranked
    thumbs: Thumbs

    def _tag(self, side: Side, i: int, cls: str) -> str:
        return (f"<img class='{cls}' title='{html.escape(side.paths[i])}' "
                f"src='data:image/jpeg;base64,{self.thumbs.b64(side.images, side.paths, i)}'>")

    def query(self, q: int, cls: str) -> str:
        return self._tag(self.setting.query, int(self.a.q_rows[q]), cls)

    def gallery(self, g: int, cls: str) -> str:
        return self._tag(self.setting.gallery, int(self.a.g_rows[g]), cls)


def tile(body: str, color: str, caption: str, data: str, dashed: bool = False) -> str:
    """An image in a coloured frame (solid; dashed: removed by the protocol) over a caption."""
    style = "dashed" if dashed else "solid"
    return (f"<div class='fmcnet-tile' {data} style='border:4px {style} {color};padding:2px;"
            f"margin:2px;text-align:center;font-size:11px'>{body}"
            f"<div class='fmcnet-caption'>{caption}</div></div>")


def ranked_row(side: str, label: str, r: Ranked, q: int, k: int,
               images: TrialImages) -> tuple[str, list[dict]]:
    """Run `side`'s top-k kept gallery items for query q (green: true match, red: any
    other kept item) after its AP and first-match rank; and the tiles as records."""
    tiles, state = [], []
    for t in r.tiles(q, k):
        color = MATCH_COLOR if t["match"] else MISS_COLOR
        tiles.append(tile(
            images.gallery(t["gallery"], "fmcnet-gallery-image"), color,
            f"{t['rank']}. d={t['distance']:.3f}<br>cam{t['cam']} · id {t['pid']}",
            f"data-gallery='{t['gallery']}'"))
        state.append({"gallery_index": t["gallery"], "rank": t["rank"], "pid": t["pid"],
                      "cam": t["cam"], "distance": t["distance"], "is_match": t["match"],
                      "border_color": color})
    first = int(r.first[q])
    verdict = ("no true match in this gallery (left out of the metrics)" if first == 0 else
               f"AP <b>{pct(r.ap[q])}</b> · first true match at rank "
               f"<b style='color:{MATCH_COLOR if first == 1 else MISS_COLOR}'>{first}</b>")
    head = (f"<div class='fmcnet-row-label' style='width:170px;font-size:12px'><b>{side}</b> "
            f"{html.escape(label)}<br>{verdict}</div>")
    return (f"<div class='fmcnet-row' data-run='{side}' style='display:flex;flex-wrap:wrap;"
            f"align-items:flex-start'>{head}{''.join(tiles)}</div>", state)


def ground_truth_strip(a: Ranked, b: Ranked | None, q: int, images: TrialImages, *,
                       show_removed: bool, max_strip: int) -> tuple[str, list[dict]]:
    """Every kept true match of query q with its rank in each run and, with
    `show_removed`, the images of its identity that the protocol removed (dashed grey);
    the first `max_strip` as tiles. Returns the HTML and the items."""
    ranks_b = {m["gallery"]: m["rank"] for m in b.true_matches(q)} if b is not None else {}
    items = [{"gallery_index": m["gallery"], "rank_a": m["rank"],
              "rank_b": ranks_b.get(m["gallery"]), "removed": False}
             for m in a.true_matches(q)]
    if show_removed:
        pos_b = {m["gallery"]: m["position"] for m in b.removed_matches(q)} if b is not None else {}
        items += [{"gallery_index": m["gallery"], "position_a": m["position"],
                   "position_b": pos_b.get(m["gallery"]), "removed": True}
                  for m in a.removed_matches(q)]
    tiles = []
    for it in items[:max_strip]:
        g = it["gallery_index"]
        cam, pid = int(a.g_cams[g]), int(a.g_pids[g])
        if it["removed"]:
            where = f"A pos {it['position_a']}" + (
                f" · B pos {it['position_b']}" if b is not None else "")
            cap, color = f"removed<br>{where}<br>cam{cam} · id {pid}", REMOVED_COLOR
        else:
            where = f"A rank {it['rank_a']}" + (
                f" · B rank {it['rank_b']}" if b is not None else "")
            cap, color = f"{where}<br>cam{cam} · id {pid}", MATCH_COLOR
        it.update(cam=cam, pid=pid)
        tiles.append(tile(images.gallery(g, "fmcnet-strip-image"), color, cap,
                          f"data-gallery='{g}'", dashed=it["removed"]))
    more = ""
    if len(items) > max_strip:
        rest = items[max_strip:]
        more = (f"<div class='fmcnet-strip-more' style='font-size:11px'>+{len(rest)} more: " +
                ", ".join(f"rank {x.get('rank_a') or 'removed'}" for x in rest) + "</div>")
    n_true = sum(not x["removed"] for x in items)
    title = (f"<div style='font-size:12px'><b>ground truth</b>: {n_true} true match(es) kept"
             + (f", {len(items) - n_true} removed by the protocol" if show_removed else "")
             + "</div>")
    return (f"<div class='fmcnet-strip'>{title}<div style='display:flex;flex-wrap:wrap'>"
            f"{''.join(tiles)}</div>{more}</div>", items)


def header_text(setting: SettingData, table: QueryTable, q: int, position: int, n_view: int) -> str:
    """Setting, query number (and its place, 0-based `position`, among `n_view`), identity,
    camera and image path of query q."""
    path = setting.query.paths[int(table.a.q_rows[q])]
    return (f"{setting.name} · query {q} ({position + 1}/{n_view}) · "
            f"id {int(table.pids[q])} · {setting.q_modality} cam{int(table.cams[q])}"
            + (f" · {path}" if path else ""))


def header_html(text: str, path: str) -> str:
    """The header with the query's path shortened to its last three parts (the whole
    path on hover, and written out in the exported HTML)."""
    if not path:
        return html.escape(text)
    short = "…/" + "/".join(Path(path).parts[-3:])
    return (html.escape(text[: len(text) - len(path)])
            + f"<span title='{html.escape(path)}'>{html.escape(short)}</span>")


@dataclass
class Panel:
    """One query on screen: the panel's HTML and the records the tests and exports read."""

    header: str  # plain text
    html: str
    tiles_a: list[dict]
    tiles_b: list[dict]
    strip: list[dict]


def query_panel(q: int, table: QueryTable, images: TrialImages, labels: dict[str, str], *,
                k: int, position: int, n_view: int, show_removed: bool, max_strip: int,
                uid: str) -> Panel:
    """The header, the query, run A's row, run B's under it when comparing, and the
    ground-truth strip; a style that marks q's point in the scatter of the browser `uid`."""
    a, b, s = table.a, table.b, images.setting
    header = header_text(s, table, q, position, n_view)
    row_a, tiles_a = ranked_row("A", labels["A"], a, q, k, images)
    row_b, tiles_b = ranked_row("B", labels["B"], b, q, k, images) if b is not None else ("", [])
    strip, items = ground_truth_strip(a, b, q, images, show_removed=show_removed,
                                      max_strip=max_strip)
    query = tile(images.query(q, "fmcnet-query-image"), "#333",
                 f"{s.q_modality} cam{int(table.cams[q])} · id {int(table.pids[q])}",
                 f"data-query='{q}'")
    marker = (f"<style>.{uid} .fmcnet-scatter circle[data-q='{q}']"
              "{r:6px;fill:#ff7f0e;fill-opacity:1;stroke:#000}</style>")
    path = s.query.paths[int(a.q_rows[q])]
    return Panel(header, (
        f"<div class='fmcnet-panel' data-query='{q}'>{marker}"
        f"<div class='fmcnet-header'>{header_html(header, path)}</div>"
        f"<div style='display:flex;align-items:flex-start'>{query}<div>{row_a}{row_b}</div></div>"
        f"{strip}</div>"), tiles_a, tiles_b, items)


def query_list_rows(table: QueryTable, view: np.ndarray) -> list[tuple[str, int]]:
    """(label, position in the view) per query in view: number, camera, identity, AP and
    first-match rank of each run, and AP(B) - AP(A) when comparing."""
    t, qs = table, view
    cols = [np.char.mod("q %5d", qs), np.char.mod("cam%d", t.cams[qs]),
            np.char.mod("id %4d", t.pids[qs])]

    def ap(x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), "   n/a", np.char.mod("%5.1f%%", 100 * np.nan_to_num(x)))

    cols += [np.char.add("A ", ap(t.a.ap[qs])), np.char.mod("r%-3d", t.a.first[qs])]
    if t.b is not None:
        delta = t.delta[qs]
        cols += [np.char.add("B ", ap(t.b.ap[qs])), np.char.mod("r%-3d", t.b.first[qs]),
                 np.where(np.isnan(delta), "Δ   n/a",
                          np.char.mod("Δ%+6.1f", 100 * np.nan_to_num(delta)))]
    labels = cols[0]
    for c in cols[1:]:
        labels = np.char.add(np.char.add(labels, " · "), c)
    return list(zip(labels.tolist(), range(len(qs))))


def summary_html(setting: SettingData, trial: int, table: QueryTable, view: np.ndarray,
                 labels: dict[str, str], b_problem: str = "") -> str:
    """R1, mAP, mINP, queries with a true match and failures of each run over the view."""
    parts = [f"<b>{html.escape(setting.name)}</b> · gallery trial {trial} of "
             f"{setting.n_trials} saved · {len(view)} of {len(table.pids)} queries in view"]
    for side, r in (("A", table.a), ("B", table.b)):
        if r is None:
            continue
        m = r.summary(view)
        figures = ("no query with a true match in view" if m["valid"] == 0 else
                   f"R1 {100 * m['R1']:.2f}% · mAP {100 * m['mAP']:.2f}% · "
                   f"mINP {100 * m['mINP']:.2f}%")
        parts.append(f"<span class='fmcnet-summary-{side.lower()}'><b>{side}</b> "
                     f"({html.escape(labels[side])}): {figures} · {m['valid']} with a "
                     f"true match · {m['failures']} failures</span>")
    if b_problem:
        parts.append(f"<span style='color:{MISS_COLOR}'>{html.escape(b_problem)}</span>")
    if setting.reranked:
        parts.append("<i>re-ranked distances (k-reciprocal), as the run was scored</i>")
    return "<div style='line-height:1.6'>" + "<br>".join(parts) + "</div>"


def scatter_svg(table: QueryTable, mask: np.ndarray, labels: dict[str, str], size: int = 240,
                pad: int = 28) -> str:
    """AP(A) against AP(B), one point per query with a true match; points in the view
    (`mask`) are blue and open their query on a click (through the hidden text widget
    `.fmcnet-scatter-pick` of the same browser)."""
    a, b = table.a, table.b
    assert b is not None
    ok = ~np.isnan(a.ap) & ~np.isnan(b.ap)
    span = size - 2 * pad
    x = pad + a.ap * span
    y = size - pad - b.ap * span

    def dots(sel: np.ndarray, cls: str) -> str:
        qs = np.flatnonzero(sel)
        out = np.char.add(f'<circle class="{cls}" data-q="', qs.astype(str))
        for text, col in (('" cx="', np.char.mod("%.1f", x[qs])),
                          ('" cy="', np.char.mod("%.1f", y[qs]))):
            out = np.char.add(np.char.add(out, text), col)
        return "".join(np.char.add(out, '" r="3"/>').tolist())

    pick = ("const q=event.target.getAttribute('data-q');if(q===null)return;"
            "const i=this.closest('.fmcnet-ranking-browser').querySelector("
            "'.fmcnet-scatter-pick input');i.value=q;"
            "i.dispatchEvent(new Event('input',{bubbles:true}));")
    return (f'<svg width="{size}" height="{size}" onclick="{pick}" style="font:10px sans-serif">'
            "<style>circle.o{fill:#ccc;pointer-events:none}"
            "circle.v{fill:#1f77b4;fill-opacity:.6;cursor:pointer}</style>"
            f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#999" '
            'stroke-dasharray="3,3"/>'
            f"{dots(ok & ~mask, 'o')}{dots(ok & mask, 'v')}"
            f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">AP of A '
            f"({html.escape(labels['A'])})</text>"
            f'<text x="10" y="{size / 2}" text-anchor="middle" '
            f'transform="rotate(-90 10 {size / 2})">AP of B ({html.escape(labels["B"])})</text>'
            f'<text x="{pad}" y="{size - pad + 12}" text-anchor="middle">0</text>'
            f'<text x="{size - pad}" y="{size - pad + 12}" text-anchor="middle">100%</text>'
            "</svg><div style='font-size:11px'>above the diagonal: B better; click a blue "
            "point to open its query</div>")
