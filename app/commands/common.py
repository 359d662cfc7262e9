"""Options shared by every command that uses a model, and loading with them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stt.modelfiles import ModelFiles
from stt.quantization import AUTO_RULE, QUANTIZATION_CHOICES, WeightsChoice, resolve_weights
from stt.runtime import DEVICES, RuntimeOptions

if TYPE_CHECKING:
    from stt.boost.phrases import Phrase
    from stt.boost.replacements import Replacement
    from stt.engine import Recognizer


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """`--model`, `--quantization`, `--device`, `--threads`, `--debug`."""
    from stt.catalog import DEFAULT_MODEL

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="NAME|DIR", help=f"catalog name or model directory ({DEFAULT_MODEL})"
    )
    group.add_argument(
        "--quantization", choices=QUANTIZATION_CHOICES, default="auto", help=f"weights (auto: {AUTO_RULE})"
    )
    group.add_argument("--device", choices=DEVICES, default="auto", help="where to run (auto: CUDA, else CPU)")
    group.add_argument("--threads", type=int, default=0, metavar="N", help="CPU threads (physical cores)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and engine logs")


def add_vocabulary_options(parser: argparse.ArgumentParser) -> None:
    """`--vocabulary FILE` and `--boost-strength ALPHA`."""
    from stt.boost.phrases import DEFAULT_STRENGTH

    group = parser.add_argument_group("vocabulary")
    group.add_argument(
        "--vocabulary",
        type=Path,
        metavar="FILE",
        help="boost these words and phrases, as NeMo does (UTF-8, one per line; blank lines and # comments ignored)",
    )
    group.add_argument(
        "--boost-strength",
        metavar="ALPHA",
        default=None,
        help=f"how hard to boost them: a number of 0 or more ({DEFAULT_STRENGTH:g}; 0 turns boosting off)",
    )


def read_vocabulary(args: argparse.Namespace) -> tuple[list[Phrase], float] | None:
    """`--vocabulary` and `--boost-strength`, checked before the model loads (raises VocabularyError); without
    `--vocabulary`, the phrases of Settings ▸ Vocabulary, if any."""
    from stt.boost.phrases import DEFAULT_STRENGTH, VocabularyError, parse_strength, read_phrase_file

    path: Path | None = getattr(args, "vocabulary", None)
    strength = getattr(args, "boost_strength", None)
    if path is not None:
        phrases = read_phrase_file(path)
    else:
        from app.settings import SettingsStore

        vocabulary = SettingsStore().current.vocabulary
        phrases = vocabulary.boost_phrases()
        if not phrases:
            if strength is not None:
                raise VocabularyError(
                    "--boost-strength needs phrases: give --vocabulary FILE, or add them in Settings ▸ Vocabulary"
                )
            return None
        strength = vocabulary.strength if strength is None else strength
    return phrases, parse_strength(DEFAULT_STRENGTH if strength is None else strength)


def replacement_rules() -> list[Replacement]:
    """The replacements and snippets of Settings ▸ Vocabulary."""
    from app.settings import SettingsStore

    return SettingsStore().current.vocabulary.replacement_rules()


def apply_vocabulary(recognizer: Recognizer, chosen: tuple[list[Phrase], float] | None) -> dict[str, float] | None:
    """Boost the chosen phrases in `recognizer`; warnings (phrases left out) go to stderr. Returns the summary
    for JSON output (`{"phrases": N, "strength": α}`), or None without a vocabulary."""
    from stt.boost.phrases import compile_vocabulary

    if chosen is None:
        return None
    phrases, strength = chosen
    tokenizer = recognizer.phrase_tokenizer()
    compiled = compile_vocabulary(phrases, tokenizer.encode, strength)
    for warning in [tokenizer.warning, *compiled.warnings] if tokenizer.warning else compiled.warnings:
        print(f"perch: warning: {warning}", file=sys.stderr)
    recognizer.boost = compiled.boost
    return {"phrases": compiled.phrases, "strength": compiled.strength}


def setup_logging(debug: bool) -> None:
    """Engine logs to stderr: warnings, or everything under --debug; decode traces when asked."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="perch: %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("perch.decode").setLevel(logging.INFO)


def weights(args: argparse.Namespace) -> WeightsChoice:
    """`--quantization` decided for `--model` on `--device` (the choice is remembered on `args`)."""
    chosen: WeightsChoice | None = getattr(args, "weights", None)
    if chosen is None:
        chosen = resolve_weights(args.quantization or "auto", args.model, getattr(args, "device", None) or "auto")
        args.weights = chosen
        logging.getLogger("perch.model").info("%s: %s weights", args.model, chosen.describe())
    return chosen


def model_files(args: argparse.Namespace) -> ModelFiles:
    """Resolve `--model` and `--quantization` to files on disk."""
    from stt.hub import resolve_model_dir

    quantization = weights(args).quantization
    directory = resolve_model_dir(args.model, quantization)
    fix = f"run `perch models download {args.model} --quantization {quantization} --force`"
    if Path(args.model).is_dir():
        fix = f"replace it with a good copy in {directory}"
    return ModelFiles.locate(directory, quantization, fix)


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """Session options from the command line."""
    return RuntimeOptions(device=args.device, threads=args.threads)


def error(message: str) -> None:
    """One line on stderr."""
    print(f"perch: error: {message}", file=sys.stderr)
