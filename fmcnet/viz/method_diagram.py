"""Diagrams of the method: the whole of FMCNet and each of its modules, drawn by code.

`method_figure()` shows SFD -> FMC -> SFF with every tensor of docs/method.md and the
loss at each place; `sfd_figure()`, `fmc_figure()` and `sff_figure()` show one module
each (notebooks 01-03 open with them). `python -m fmcnet.viz.method_diagram [folder]`
writes them as `method.png`, `sfd.png`, `fmc.png` and `sff.png` (default: `figures/`).

Each picture is drawn on a canvas measured in inches, so a font size says how large a
label is when the picture is shown at its own width; they are sized to read at a README's
~900 px. Colour says what kind a feature is -- blue shared, orange visible-specific,
purple infrared-specific -- and a dashed line says it was generated. The order of the
two kinds under (omega_1, omega_2) is read from `fmcnet.model.sff.specific_kinds`, the
function the model fuses with, so the picture cannot drift from the code.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib.patheffects as pe
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from fmcnet.model.sff import specific_kinds
from fmcnet.utils import atomic_write_bytes

SHARED = "#3569a8"  # F_sh, E_sh, P_sh
V_KIND = "#d2691e"  # the visible-specific kind: F_sp,V and F'_sp,V (omega_1)
I_KIND = "#7a4fa3"  # the infrared-specific kind: F_sp,I and F'_sp,I (omega_2)
LOSS = "#c0392b"
NEUTRAL = "#555555"
PANEL = "#f3f4f6"

FONT = 13.0  # box labels
SMALL = 11.5  # notes, loss tags, equation numbers

DPI = 100
FIGURE_FILES = {"method": "method.png", "sfd": "sfd.png", "fmc": "fmc.png", "sff": "sff.png"}

_MODALITY = {"V": "visible", "I": "infrared"}


def _other(m: str) -> str:
    return "I" if m == "V" else "V"


def fusion_terms(m: str) -> tuple[str, str]:
    """(omega_1 term, omega_2 term) of F_fu,m as mathtext, in the order the model fuses.

    Each image carries its own modality's real F_sp,m and the generated F'_sp of the
    other modality; `specific_kinds` (the model's own function) orders them V-kind, I-kind.
    """
    real, generated = f"F_{{sp,{m}}}", f"F'_{{sp,{_other(m)}}}"
    v_kind, i_kind = specific_kinds(real, generated, _MODALITY[m])
    return v_kind, i_kind


def fusion_formula(m: str) -> str:
    """Eq. 15 as this code reads it, e.g. F_fu,I = omega_1 F'_sp,V + omega_2 F_sp,I."""
    w1, w2 = fusion_terms(m)
    return rf"$F_{{fu,{m}}} = \omega_1 {w1} + \omega_2 {w2}$"


def _kind_color(term: str) -> str:
    return V_KIND if term.endswith(",V}") else I_KIND


class _Canvas:
    """A figure whose data coordinates are inches, with boxes, arrows and labels."""

    def __init__(self, width: float, height: float) -> None:
        self.fig = Figure(figsize=(width, height), dpi=DPI)
        self.renderer = FigureCanvasAgg(self.fig).get_renderer()
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self._boxes = 0

    def panel(self, x0: float, x1: float, y0: float, y1: float, title: str,
              subtitle: str = "", subtitle_color: str = LOSS) -> None:
        self.ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0,
                                         boxstyle="round,pad=0,rounding_size=0.12",
                                         facecolor=PANEL, edgecolor="none", zorder=0))
        self.text((x0 + x1) / 2, y1 - 0.22, title, size=FONT + 1, weight="bold")
        if subtitle:
            self.text((x0 + x1) / 2, y1 - 0.52, subtitle, size=SMALL, color=subtitle_color)

    def box(self, cx: float, cy: float, w: float, h: float, label: str, color: str, *,
            size: float = FONT, fill: str = "white") -> None:
        """A rounded box centred at (cx, cy); its label carries the box's gid so tests
        can check that every label fits inside its box."""
        n = self._boxes = self._boxes + 1
        patch = FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                               boxstyle="round,pad=0,rounding_size=0.07",
                               facecolor=fill, edgecolor=color, linewidth=1.8, zorder=3)
        patch.set_gid(f"box:{n}")
        self.ax.add_patch(patch)
        self.text(cx, cy, label, size=size, color="black", zorder=4, gid=f"label:{n}")

    def text(self, x: float, y: float, s: str, *, size: float = SMALL, color: str = "black",
             ha: str = "center", va: str = "center", weight: str = "normal", zorder: int = 5,
             gid: str | None = None) -> float:
        """A label at (x, y); returns its width in inches."""
        t = self.ax.text(x, y, s, fontsize=size, color=color, ha=ha, va=va, weight=weight,
                         zorder=zorder, linespacing=1.25)
        if gid:
            t.set_gid(gid)
        return t.get_window_extent(self.renderer).width / self.fig.dpi

    def line(self, points: Sequence[tuple[float, float]], color: str, *, dashed: bool = False,
             arrow: bool = True, halo: bool = False, width: float = 2.0, zorder: float = 2) -> None:
        """A polyline through `points`, with an arrowhead at its end. `halo` draws a white
        edge around it, so where a line on top crosses it, the two read as not joined."""
        style = (0, (4, 2.5)) if dashed else "solid"
        effects = [pe.Stroke(linewidth=width + 6, foreground="white"), pe.Normal()] if halo else None
        xs, ys = zip(*points)
        body = points[:-1] if arrow else points
        if len(body) >= 2:
            bx, by = zip(*body)
            self.ax.plot(bx, by, color=color, linewidth=width, linestyle=style,
                         solid_capstyle="butt", zorder=zorder, path_effects=effects)
        if arrow:
            self.ax.annotate("", xy=points[-1], xytext=points[-2], zorder=zorder,
                             arrowprops=dict(arrowstyle="-|>,head_length=0.5,head_width=0.25",
                                             color=color, linewidth=width, linestyle=style,
                                             shrinkA=0, shrinkB=0, path_effects=effects))

    def tap(self, points: Sequence[tuple[float, float]], color: str) -> None:
        """A branch off a line at points[0]: a junction dot there, drawn under the other
        lines with a white edge, so the lines it crosses stay whole."""
        self.line(points[:-1], color, arrow=False, halo=True, zorder=1)
        self.line(points[-2:], color, zorder=1)
        self.ax.plot(*points[0], marker="o", markersize=6, color=color, zorder=3)

    def width_of(self, s: str, size: float = SMALL) -> float:
        """The width of a label in inches (drawn, measured, removed)."""
        t = self.ax.text(0, 0, s, fontsize=size)
        w = t.get_window_extent(self.renderer).width / self.fig.dpi
        t.remove()
        return w

    def legend(self, y: float) -> None:
        """One centred line that says what colour and dashing mean."""
        entries = ((SHARED, False, "shared feature"),
                   (V_KIND, False, r"visible-specific kind ($\omega_1$)"),
                   (I_KIND, False, r"infrared-specific kind ($\omega_2$)"),
                   (NEUTRAL, True, "dashed: generated by FMC"))
        gap, key = 0.45, 0.6
        total = sum(key + self.width_of(label) for *_, label in entries) + gap * (len(entries) - 1)
        x = (self.ax.get_xlim()[1] - total) / 2
        for color, dashed, label in entries:
            self.line([(x, y), (x + 0.5, y)], color, dashed=dashed, arrow=False)
            x += key + self.text(x + key, y, label, ha="left") + gap


def _front(c: _Canvas, m: str, ysh: float, ysp: float, kind: str) -> None:
    """Modality m's image X_m into its front E_m, whose F_m forks to the shared line (at
    height ysh) and the specific one (ysp)."""
    yin = (ysh + ysp) / 2
    c.box(0.5, yin, 0.75, 0.62, rf"$X_{m}$", NEUTRAL)
    c.line([(0.875, yin), (1.25, yin)], NEUTRAL)
    c.box(1.55, yin, 0.6, 0.55, rf"$E_{m}$", kind)
    c.line([(1.85, yin), (2.2, yin)], kind, arrow=False)
    c.line([(2.2, ysh), (2.2, ysp)], kind, arrow=False)
    c.line([(2.2, ysh), (2.55, ysh)], kind)
    c.line([(2.2, ysp), (2.55, ysp)], kind)
    c.text(2.0, yin + (0.24 if m == "V" else -0.24), rf"$F_{m}$", size=FONT, color=kind)


def _arrow_label(c: _Canvas, x: float, y: float, s: str, color: str, below: bool = False) -> None:
    c.text(x, y - 0.2 if below else y + 0.2, s, size=FONT, color=color)


# ---------------------------------------------------------------------------------------
# The whole method
# ---------------------------------------------------------------------------------------
def method_figure() -> Figure:
    """SFD -> FMC -> SFF with every tensor (X, E, F, G, D, omega, F_fu, F_fp) and the losses
    where they act (paper Fig. 2, in this code's reading of Eq. 15)."""
    c = _Canvas(12.0, 8.6)
    # the six feature lines, top to bottom: the visible image's, then the infrared image's
    y = {"shV": 6.85, "spV": 5.85, "genI": 4.8, "genV": 3.6, "spI": 2.55, "shI": 1.55}
    top, bottom = 8.25, 1.1
    c.panel(1.05, 4.75, bottom, top, "SFD", r"$L_{SFD} = L_{MD} + L_{ID}$  (Eqs. 1-10)")
    c.panel(4.85, 8.0, bottom, top, "FMC", r"$L_{FMC}$: $L_{GAN} + L_{FC} + L_{IC}$  (11-14)")
    c.panel(8.1, 11.9, bottom, top, "SFF", r"$L_{SFF} = L_{MC} + L_{FID}$  (15-19)")

    for m, ysh, ysp in (("V", y["shV"], y["spV"]), ("I", y["shI"], y["spI"])):
        kind = V_KIND if m == "V" else I_KIND
        _front(c, m, ysh, ysp, kind)
        c.text(0.5, (ysh + ysp) / 2 + (0.52 if m == "V" else -0.52), _MODALITY[m], size=SMALL)
        c.box(3.05, ysh, 1.0, 0.55, r"$E_{sh}$", SHARED)
        c.box(3.05, ysp, 1.0, 0.55, rf"$E^{{{m}}}_{{sp}}$", kind)
        _arrow_label(c, 4.1, ysh, rf"$F_{{sh,{m}}}$", SHARED)
        _arrow_label(c, 4.1, ysp, rf"$F_{{sp,{m}}}$", kind)
    c.text(2.95, 4.55, r"both $E_{sh}$ are one network" "\n" "(weights shared by V and I)",
           size=SMALL, color=SHARED)
    c.text(2.95, 3.55, r"$L_{ID}$: $P_{sh}$, $P^V_{sp}$, $P^I_{sp}$ (8)" "\n"
           r"$L_{MD}$ on centres $C_{sh}$, $C_{sp}$ (3-7)", size=SMALL, color=LOSS)

    # the buses from SFD to SFF
    for key, x1, color in (("shV", 9.95, SHARED), ("shI", 9.95, SHARED),
                           ("spV", 8.35, V_KIND), ("spI", 8.35, I_KIND)):
        c.line([(3.55, y[key]), (x1, y[key])], color)
    # FMC: each generator reads its modality's shared feature
    for m, ysh, ygen, yreal in (("V", y["shV"], y["genI"], y["spV"]),
                                ("I", y["shI"], y["genV"], y["spI"])):
        o = _other(m)
        gen_color = I_KIND if o == "I" else V_KIND
        c.tap([(5.15, ysh), (5.15, ygen), (5.45, ygen)], SHARED)
        c.box(5.95, ygen, 1.0, 0.55, rf"$G_{{{m}\to {o}}}$", gen_color)
        c.line([(6.45, ygen), (8.35, ygen)], gen_color, dashed=True)
        _arrow_label(c, 6.75, ygen, rf"$F'_{{sp,{o}}}$", gen_color, below=(m == "I"))
        # D judges the generated feature against the real one of its kind
        yd = (ygen + yreal) / 2
        c.line([(7.45, ygen), (7.45, yd + (-0.31 if m == "V" else 0.31))], gen_color,
               dashed=True)
        c.box(7.45, yd, 0.9, 0.62, rf"$D_{{{m}\to {o}}}$" "\n" rf"vs $F_{{sp,{o}}}$", gen_color,
              size=SMALL)
    c.text(6.4, 4.2, r"$L_{GAN}$ (12): G against D" "\n" r"$L_{FC}$ (13), $L_{IC}$ (14)",
           size=SMALL, color=LOSS)

    # SFF: one (omega_1, omega_2) for both modalities, per kind
    for m, ysp_v, ysp_i, ysh in (("V", y["spV"], y["genI"], y["shV"]),
                                  ("I", y["genV"], y["spI"], y["shI"])):
        w1, w2 = fusion_terms(m)
        yfu = (ysp_v + ysp_i) / 2
        c.text(8.2, ysp_v + 0.2, r"$\omega_1$", size=FONT, color=_kind_color(w1))
        c.text(8.2, ysp_i - 0.2, r"$\omega_2$", size=FONT, color=_kind_color(w2))
        c.box(8.85, yfu, 1.0, abs(ysp_v - ysp_i) + 0.45, r"$+$", NEUTRAL, size=FONT + 4)
        c.line([(9.35, yfu), (9.95, yfu)], NEUTRAL)
        _arrow_label(c, 9.65, yfu, rf"$F_{{fu,{m}}}$", NEUTRAL, below=(m == "I"))
        ycat = (ysh + yfu) / 2
        c.box(10.25, ycat, 0.6, abs(ysh - yfu) + 0.5, "Cat", NEUTRAL)
        c.line([(10.55, ycat), (11.05, ycat)], NEUTRAL)
        c.text(11.45, ycat, rf"$F_{{fp,{m}}}$", size=FONT)
    c.text(10.0, 4.2, r"$L_{MC}$ (17), $L_{FID}$ via $P_{fp}$ (18)" "\n"
           r"test: L2-normalised $F_{fp}$", size=SMALL, color=LOSS)

    c.text(6.0, 0.72, fusion_formula("V") + ",    " + fusion_formula("I")
           + r":  $\omega_1$ weighs the visible-specific kind", size=FONT)
    c.legend(0.25)
    return c.fig


# ---------------------------------------------------------------------------------------
# One module each
# ---------------------------------------------------------------------------------------
def sfd_figure() -> Figure:
    """SFD (Eqs. 1-10): fronts, the shared and specific tails, classifiers, MD and ID losses."""
    c = _Canvas(11.0, 6.6)
    y = {"shV": 5.2, "spV": 4.2, "spI": 2.2, "shI": 1.2}
    c.panel(0.95, 6.6, 0.55, 6.25, "SFD: decompose each modality",
            r"$E_V, E_I$: ResNet stem + layer1-2;  $E_{sh}, E^V_{sp}, E^I_{sp}$: layer3-4 + GAP",
            subtitle_color=NEUTRAL)
    c.panel(6.7, 10.9, 0.55, 6.25, "MD loss on identity centres", r"$L_{SFD} = L_{MD} + L_{ID}$  (10)")
    for m, ysh, ysp in (("V", y["shV"], y["spV"]), ("I", y["shI"], y["spI"])):
        kind = V_KIND if m == "V" else I_KIND
        _front(c, m, ysh, ysp, kind)
        for yy, enc, feat, clf, score, color in (
                (ysh, r"$E_{sh}$", rf"$F_{{sh,{m}}}$", r"$P_{sh}$", rf"$S_{{sh,{m}}}$", SHARED),
                (ysp, rf"$E^{{{m}}}_{{sp}}$", rf"$F_{{sp,{m}}}$", rf"$P^{{{m}}}_{{sp}}$",
                 rf"$S_{{sp,{m}}}$", kind)):
            c.box(3.05, yy, 1.0, 0.55, enc, color)
            c.line([(3.55, yy), (4.75, yy)], color)
            _arrow_label(c, 4.1, yy, feat, color)
            c.box(5.1, yy, 0.7, 0.55, clf, color)
            c.line([(5.45, yy), (5.85, yy)], color)
            c.text(6.2, yy, score, size=FONT)
    c.text(3.0, 3.2, r"both $E_{sh}$ are one network" "\n" "(weights shared by V and I)",
           size=SMALL, color=SHARED)
    c.text(5.45, 3.2, r"$L_{ID}$ (8): cross-" "\n" r"entropy of the four $S$",
           size=SMALL, color=LOSS)

    x0 = 6.9
    c.text(8.8, 5.3, r"$C^p_{x,m} = \frac{1}{K}\sum_k F^{k,p}_{x,m}$  (3)", size=FONT)
    rows = ((V_KIND, r"$L_{sps}$ (5): specific centres of" "\n"
                     r"other identities $\geq \rho_2$ away"),
            (SHARED, r"$L_{shs}$ (6): pull $C^p_{sh,V}$ to $C^p_{sh,I}$;" "\n"
                     r"other identities $\geq \rho_3$ away"),
            (I_KIND, r"$L_{dc}$ (4): shared centres farther" "\n"
                     r"from $C^p_{sp}$ than its spread + $\rho_1$"))
    for n, (color, label) in enumerate(rows):
        yy = 4.45 - 0.95 * n
        c.ax.plot([x0, x0], [yy - 0.3, yy + 0.3], color=color, linewidth=4, zorder=2)
        c.text(x0 + 0.15, yy, label, ha="left", size=SMALL)
    c.text(8.8, 1.45, r"$L_{MD} = L_{shs} + \lambda_1 L_{dc} + \lambda_2 L_{sps}$  (7)",
           size=FONT, color=LOSS)
    c.text(8.8, 0.9, r"sums over the batch's P identities; $\|\cdot\|_2$ not squared",
           size=SMALL - 1, color=NEUTRAL)
    return c.fig


def fmc_figure() -> Figure:
    """FMC (Eqs. 11-14): each generator makes the other modality's specific feature from
    a shared one; D, L_FC and L_IC judge it against the real features of that kind."""
    c = _Canvas(11.0, 6.0)
    c.panel(0.1, 10.9, 0.1, 5.85, "FMC: generate the missing modality's specific feature",
            r"$L_{FMC}$ = $L_{GAN} + L_{FC} + L_{IC}$ of $V\to I$, plus the same of $I\to V$")
    for m, yy in (("V", 3.95), ("I", 1.95)):
        o = _other(m)
        color = I_KIND if o == "I" else V_KIND
        c.text(0.7, yy, rf"$F_{{sh,{m}}}$", size=FONT, color=SHARED)
        c.line([(1.1, yy), (1.7, yy)], SHARED)
        c.box(2.25, yy, 1.1, 0.6, rf"$G_{{{m}\to {o}}}$", color)
        c.line([(2.8, yy), (4.05, yy)], color, dashed=True, arrow=False)
        _arrow_label(c, 3.4, yy, rf"$F'_{{sp,{o}}}$", color)
        c.line([(4.05, yy - 0.65), (4.05, yy + 0.65)], color, dashed=True, arrow=False)
        for dy, label, loss in (
                (0.65, rf"$D_{{{m}\to {o}}}$", rf"$L_{{GAN}}$ (12): D tells real $F_{{sp,{o}}}$"
                 rf" from $F'_{{sp,{o}}}$;" "\n" "G is trained to fool it"),
                (0.0, rf"$C^p_{{sp,{o}}}$", rf"$L_{{FC}}$ (13): $\|F'_{{sp,{o}}} - C^p_{{sp,{o}}}\|_1$,"
                 "\n" rf"to the centre of the real $F_{{sp,{o}}}$"),
                (-0.65, rf"$P^{{{o}}}_{{sp}}$", rf"$L_{{IC}}$ (14): the {_MODALITY[o]}-specific"
                 "\n" rf"classifier must name the source's $Y_{m}$")):
            c.line([(4.05, yy + dy), (4.45, yy + dy)], color, dashed=True)
            c.box(5.05, yy + dy, 1.2, 0.5, label, color)
            c.line([(5.65, yy + dy), (6.05, yy + dy)], LOSS, arrow=False, width=1.0)
            c.text(6.15, yy + dy, loss, size=SMALL - 0.5, color=LOSS, ha="left")
    c.text(5.5, 0.5, r"G: three FC layers $C \to h \to h \to C$;  D: one FC layer, trained on"
           " detached features with its own optimiser" "\n"
           r"(its sigmoid lives in the loss);  G's side: $-\log D(G(\cdot))$",
           size=SMALL, color=NEUTRAL)
    return c.fig


def sff_figure() -> Figure:
    """SFF (Eqs. 15-19) in this code's reading: one (omega_1, omega_2) for both
    modalities, omega_1 on the visible-specific kind and omega_2 on the infrared-specific
    kind, real or generated; then Cat with the shared feature."""
    c = _Canvas(11.0, 5.6)
    c.panel(0.1, 10.9, 0.1, 5.45, "SFF: fuse like with like",
            r"one $(\omega_1, \omega_2)$ for both modalities:"
            r" $\omega_1$ weighs the visible-specific kind, $\omega_2$ the infrared-specific kind",
            subtitle_color=NEUTRAL)
    kx = {V_KIND: 2.2, I_KIND: 4.45}
    c.text(kx[V_KIND], 4.35, "visible-specific kind", size=SMALL, color=V_KIND, weight="bold")
    c.text(kx[I_KIND], 4.35, "infrared-specific kind", size=SMALL, color=I_KIND, weight="bold")
    for m, yy in (("V", 3.45), ("I", 1.55)):
        w1, w2 = fusion_terms(m)
        c.text(0.7, yy, f"{_MODALITY[m]}\nimage $X_{m}$", size=SMALL)
        for term, w in ((w1, r"$\omega_1$"), (w2, r"$\omega_2$")):
            color = _kind_color(term)
            c.box(kx[color], yy, 1.3, 0.6, f"${term}$", color)
            kind = "generated" if "'" in term else "real"
            c.text(kx[color], yy - 0.5, f"{kind}, \u00d7 " + w, size=SMALL, color=color)
        c.line([(5.1, yy), (5.65, yy)], _kind_color(w2), dashed="'" in w2)
        c.line([(kx[V_KIND], yy + 0.3), (kx[V_KIND], yy + 0.55), (6.0, yy + 0.55),
                (6.0, yy + 0.3)], _kind_color(w1), dashed="'" in w1)
        c.box(6.0, yy, 0.7, 0.6, r"$+$", NEUTRAL, size=FONT + 4)
        c.line([(6.35, yy), (7.3, yy)], NEUTRAL)
        _arrow_label(c, 6.83, yy, rf"$F_{{fu,{m}}}$", NEUTRAL)
        c.text(7.6, yy + 0.75, rf"$F_{{sh,{m}}}$", size=FONT, color=SHARED)
        c.line([(7.6, yy + 0.55), (7.6, yy + 0.32)], SHARED)
        c.box(7.6, yy, 0.6, 0.6, "Cat", NEUTRAL)
        c.line([(7.9, yy), (8.4, yy)], NEUTRAL)
        c.text(8.75, yy, rf"$F_{{fp,{m}}}$", size=FONT)
        c.text(5.6, yy - 0.75, fusion_formula(m), size=SMALL)
    c.text(9.9, 2.5, r"$L_{MC}$ (17): centres of" "\n" r"$F_{fp,V}$, $F_{fp,I}$ pulled" "\n"
           r"together, others $\geq \rho_4$" "\n" r"$L_{FID}$ (18): $P_{fp}$" "\n"
           r"$L_{SFF} = L_{MC} + L_{FID}$", size=SMALL - 0.5, color=LOSS)
    c.text(5.5, 0.4, r"retrieval: an infrared query's generated $F'_{sp,V}$ meets a visible image's"
           r" real $F_{sp,V}$ under the same $\omega_1$", size=SMALL, color=NEUTRAL)
    return c.fig


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_method_figures(folder: str | os.PathLike = "figures") -> dict[str, Path]:
    """Write the four diagrams as PNGs into `folder`; returns {name: path}."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    makers = {"method": method_figure, "sfd": sfd_figure, "fmc": fmc_figure,
              "sff": sff_figure}
    return {name: _save(make(), out / FIGURE_FILES[name]) for name, make in makers.items()}


if __name__ == "__main__":
    for name, path in save_method_figures(sys.argv[1] if len(sys.argv) > 1 else "figures").items():
        print(f"{name}: {path}")
