"""`architect router eval`: evaluate routers on outcome files (RouteLLM's metrics, RouterBench's frontier)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from architect.cli.common import JsonOpt, console, err_console, print_json
from architect.errors import RoutingDataError

__all__ = ["app"]

app = typer.Typer(help="Routing learned from outcomes: evaluation of routers.", no_args_is_help=True)


def _fail(option: str, message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(option)}: {escape(message)}", highlight=False)
    return typer.Exit(2)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(v: list[float] | None, fmt: Any = _num) -> str:
    return "" if not v else f" [{fmt(v[0])}, {fmt(v[1])}]"


@app.command("eval")
def eval_(
    data: Annotated[str, typer.Option("--data", help="test outcomes: a two-model or RouterBench CSV")],
    train: Annotated[str | None, typer.Option("--train", help="fit on this file, predict --data")] = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="shuffle --data, learn online after --warmup outcomes")
    ] = False,
    warmup: Annotated[int, typer.Option("--warmup", help="replay: outcomes learned before predicting")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="shuffling, folds and random baseline")] = 0,
    folds: Annotated[
        int, typer.Option("--folds", help="cross-fitting folds (and threshold choice on --train)")
    ] = 5,
    router: Annotated[
        list[str] | None,
        typer.Option(
            "--router", help="router(s) to evaluate (repeatable): text, text+tag, embed, tfidf-lr, ..."
        ),
    ] = None,
    weak: Annotated[str | None, typer.Option("--weak", help="RouterBench: the weak model of a pair")] = None,
    strong: Annotated[
        str | None, typer.Option("--strong", help="RouterBench: the strong model of a pair")
    ] = None,
    exclude: Annotated[
        str | None, typer.Option("--exclude", help="JSONL of prompts to drop (contamination list)")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="bootstrap resamples for intervals (0: none)")
    ] = 500,
    json: JsonOpt = False,
) -> None:
    """Route the prompts of --data with routers that never saw their outcomes, and report quality against
    strong-model share (APGR, CPT(50%), CPT(80%)) or, for RouterBench's many models, cost in USD against
    quality (the frontier, each single model, the per-prompt oracle, the cost to come within 1 point of
    the best model). The random and per-subject counter baselines are always evaluated in the same run."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from architect.routing.data import load_exclusions, load_outcomes, select_pair
    from architect.routing.eval import EvalOptions, Mode, evaluate
    from architect.routing.features import embeddings_available
    from architect.routing.routers import ROUTERS

    chosen = tuple(router or ["text"])
    for name in chosen:
        if name not in ROUTERS:
            raise _fail("--router", f"unknown router {name!r}; choose from {', '.join(ROUTERS)}")
        if ROUTERS[name][1] and not embeddings_available():
            raise _fail(
                "--router", f"{name!r} needs the semantic extra: pip install 'architect-llm[semantic]'"
            )
    if train is not None and replay:
        raise _fail("--replay", "give either --train or --replay, not both")
    if folds < 2:
        raise _fail("--folds", f"expected at least 2 folds, got {folds}")
    if bootstrap < 0:
        raise _fail("--bootstrap", "expected a number >= 0")
    mode: Mode = "train" if train is not None else "replay" if replay else "folds"
    try:
        excluded = load_exclusions(exclude) if exclude else None
        test = select_pair(load_outcomes(data, exclude=excluded), weak, strong)
        fit = None
        if train is not None:
            fit = select_pair(load_outcomes(train, option="--train", exclude=excluded), weak, strong)
            if len(fit.models) != len(test.models) or (
                fit.kind == test.kind == "routerbench" and fit.models != test.models
            ):
                raise RoutingDataError(
                    "--train",
                    f"its models ({', '.join(fit.models)}) differ from --data's ({', '.join(test.models)}); "
                    "give --weak and --strong to compare one pair across files",
                )
        if mode == "replay" and not 0 < warmup < test.n:
            raise RoutingDataError("--warmup", f"expected 1..{test.n - 1} (the rows of --data), got {warmup}")
        if mode != "train" and folds > test.n:
            raise RoutingDataError("--folds", f"more folds than rows ({test.n})")
    except RoutingDataError as exc:
        raise _fail(exc.option, str(exc).removeprefix(exc.option + ": ")) from None
    opts = EvalOptions(mode=mode, folds=folds, warmup=warmup, seed=seed, routers=chosen, bootstrap=bootstrap)
    result = evaluate(test, opts, fit)
    if json:
        print_json(result)
        return
    _print(result)


def _print(r: dict[str, Any]) -> None:
    how = {
        "folds": f"{r.get('folds')}-fold cross-fitting",
        "replay": f"replay after {r.get('warmup')} outcomes",
    }
    mode = how.get(r["mode"], f"trained on {r.get('train', {}).get('data')}")
    console.print(
        f"[bold]{escape(r['data'])}[/] ({r['format']}): {r['n']:,} prompts evaluated, {mode}, seed {r['seed']}; "
        f"{r['dropped']} rows lacking a score dropped, {r['excluded']} excluded; "
        f"{'tags (subject / eval_name) for counter and +tag routers' if r['tags'] else 'no tags'}"
    )
    if "apgr" in r:
        names = ["", ""] if r["models"] == ["weak", "strong"] else [f" {escape(m)}" for m in r["models"]]
        console.print(
            f"weak{names[0]}: {_num(r['weak_quality'])}, strong{names[1]}: {_num(r['strong_quality'])}"
        )
        t = Table(title="RouteLLM metrics (95% bootstrap intervals over prompts)")
        for col in (
            "router",
            "APGR",
            "APGR (every prompt)",
            "CPT(50%)",
            "CPT(80%)",
            "APGR - counter",
            "oracle APGR",
        ):
            t.add_column(col, justify="right")
        for name, f in r["routers"].items():
            ci = f["ci"]
            t.add_row(
                name,
                _num(f["apgr"]) + _ci(ci["apgr"]),
                _num(f["apgr_fine"]) + _ci(ci["apgr_fine"]),
                _pct(f["cpt50"]) + _ci(ci["cpt50"], _pct),
                _pct(f["cpt80"]) + _ci(ci["cpt80"], _pct),
                _ci(f.get("apgr_minus_counter_ci"), _signed).strip() or "-",
                _num(f["oracle_apgr"]),
            )
        console.print(t)
        return
    t = Table(title=f"single models (cost as a share of the best on train/fit, {escape(r['best_model'])})")
    for col in ("model", "quality", "USD / prompt", "cost share"):
        t.add_column(col, justify="right")
    for m in r["single_models"]:
        t.add_row(escape(m["model"]), _num(m["quality"]), f"{m['cost']:.6f}", _pct(m["cost_share"]))
    o = r["oracle"]
    t.add_row("per-prompt oracle", _num(o["quality"]), f"{o['cost']:.6f}", _pct(o["cost_share"]))
    console.print(t)
    mix = r["random_mix_within_1pt"]
    console.print(
        f"random mix of single models, within 1 point of the best: {_pct(mix and mix['cost_share'])}"
    )
    t = Table(title="cost to come within 1 point of the best model (95% bootstrap intervals over prompts)")
    for col in (
        "router",
        "policy",
        "knob chosen on train: cost share",
        "quality - best",
        "chosen here: cost share",
    ):
        t.add_column(col, justify="right")
    for name, by_policy in r["routers"].items():
        for policy, f in by_policy.items():
            tr = f.get("within_1pt_train_chosen")
            te = f["within_1pt_test_chosen"]
            t.add_row(
                name,
                policy,
                "-" if tr is None else _pct(tr["cost_share"]) + _ci(tr["cost_share_ci"], _pct),
                "-" if tr is None else _pt(tr["quality_minus_best"]) + _ci(tr["quality_minus_best_ci"], _pt),
                "-" if te is None else _pct(te["cost_share"]),
            )
    console.print(t)


def _signed(v: float) -> str:
    return f"{v:+.3f}"


def _pt(v: float) -> str:
    return f"{100 * v:+.1f} pt"
