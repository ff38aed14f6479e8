"""The `ser` command: predict emotions of recordings, describe or export a trained model.

Imports are lazy so that `ser --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au"}


def _collect(paths: list[str]) -> tuple[list[str], list[str]]:
    """Expand folders recursively into audio files; return (inputs, problems)."""
    inputs, problems = [], []
    for name in paths:
        path = Path(name)
        if name == "-":
            inputs.append("-")
        elif path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                problems.append(
                    f"{name}: folder holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})"
                )
            inputs.extend(found)
        elif path.is_file():
            inputs.append(str(path))
        else:
            problems.append(f"{name}: no such file or folder")
    return inputs, problems


def _predict_stdin(predictor):
    """Predict a recording streamed on stdin: it goes to a temporary file a megabyte at a
    time, then takes the file path (a long stream is featurised block by block)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ser-stdin-") as folder:
        path = str(Path(folder) / "stdin")
        with open(path, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        result = next(predictor.predict_files([path], speakers=[path]))
    result.source = "-"
    result.message = result.message.replace(path, "stdin")
    return result


def _print_results(results, output_format: str, per_window: bool) -> None:
    if output_format == "json":
        from ser.serve.results import as_dict

        print(json.dumps([as_dict(r, per_window=per_window) for r in results], indent=2))
        return
    if output_format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "status", "label", "confidence", "top3", "message"])
        for r in results:
            writer.writerow(
                [r.source, r.status, r.label or "", _fmt(r.confidence), _top(r), r.message]
            )
        return
    rows = [("file", "class", "confidence", "top 3")]
    for r in results:
        if r.status == "ok":
            rows.append((r.source, r.label, _fmt(r.confidence), _top(r)))
        else:
            rows.append((r.source, f"({r.status})", "", r.message))
        if per_window and r.status == "ok":
            for window in r.windows:
                rows.append(
                    (
                        f"  @ {window['start']:.2f} s",
                        window["label"],
                        _fmt(window["confidence"]),
                        "",
                    )
                )
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _fmt(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _top(result) -> str:
    return ", ".join(f"{name} {p:.2f}" for name, p in result.top(3))


def _speakers(files: list[str], grouping: str) -> list[str]:
    """One speaker key per file: its folder, the file itself, or one speaker for all."""
    from ser.serve.predict import speaker_folders

    if grouping == "file":
        return list(files)
    if grouping == "all":
        return ["all"] * len(files)
    return speaker_folders(files)


def cmd_predict(args) -> int:
    from ser.errors import SerError

    inputs, problems = _collect(args.paths)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not inputs:
        return 1
    try:
        from ser.serve.predict import Predictor

        predictor = Predictor(args.model, classes=args.classes)
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ser.stage import workers

    files = [name for name in inputs if name != "-"]
    speakers = _speakers(files, args.speaker)
    # Files go through predict_files (features in parallel, batched model calls), in order.
    file_results = predictor.predict_files(
        files,
        n_jobs=workers(args.jobs),
        progress=None if len(inputs) > 1 else False,
        speakers=speakers,
        fork_server=True,
    )
    results = []
    for name in inputs:
        result = _predict_stdin(predictor) if name == "-" else next(file_results)
        if result.status == "error":
            print(f"error: {result.message}", file=sys.stderr)
        results.append(result)
    _print_results(results, args.format, args.per_window)
    failed = bool(problems) or any(r.status == "error" for r in results)
    return 1 if failed else 0


def cmd_info(args) -> int:
    from ser.errors import SerError
    from ser.model import modelio

    try:
        meta = modelio.read_meta(Path(args.model))
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    return 0


def cmd_export(args) -> int:
    from ser.errors import SerError
    from ser.serve.export import export

    try:
        written = export(args.model, args.out, format=args.format)
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def cmd_serve(args) -> int:
    from ser.errors import SerError
    from ser.serve.predict import Predictor

    try:
        # Reads model.json only: a bad folder or class fails here, in one line.
        answers = Predictor(args.model, classes=args.classes).answers
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ser.serve.app import ServeSettings, serve

    print(
        f"ser serve: loading {args.model} into {args.workers} worker(s); then "
        f"http://{args.host}:{args.port}/ (Ctrl-C stops)",
        flush=True,
    )
    serve(
        ServeSettings(
            model_dir=Path(args.model),
            max_bytes=args.max_bytes,
            classes=tuple(answers) if args.classes else None,
        ),
        host=args.host,
        port=args.port,
        workers=args.workers,
    )
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


CLASSES_HELP = (
    "the classes your recordings can have, separated by commas (e.g. neutral,happy,sad,angry): "
    "each answer is then the most probable of these (default: every class of the model)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ser", description="Speech emotion recognition with a model trained by this pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="predict the emotion of recordings")
    predict.add_argument(
        "paths", nargs="+", help="audio files, folders (recursive), or - for a WAV on stdin"
    )
    predict.add_argument("--model", default="data/model", help="model folder (default: data/model)")
    predict.add_argument("--format", choices=("table", "json", "csv"), default="table")
    predict.add_argument(
        "--per-window", action="store_true", help="also show each window of long files"
    )
    predict.add_argument(
        "--speaker",
        choices=("file", "folder", "all"),
        default="file",
        help="which recordings are of the same speaker, standardised together: file (each "
        "file alone, the default), folder (the files of one folder), or all (every file)",
    )
    predict.add_argument("--classes", help=CLASSES_HELP)
    predict.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="processes computing features (default 0: one per core)",
    )
    predict.set_defaults(run=cmd_predict)

    info = commands.add_parser("info", help="classes, feature settings and training of a model")
    info.add_argument("--model", default="data/model", help="model folder (default: data/model)")
    info.set_defaults(run=cmd_info)

    export = commands.add_parser(
        "export", help="export the model as ONNX, TFLite or SavedModel, with its settings"
    )
    # Checked by ser.serve.export (not argparse choices) so that a bad value is a one-line error.
    export.add_argument("--format", required=True, help="onnx, tflite or saved_model")
    export.add_argument(
        "--out", required=True, help="file to write (a folder for saved_model); JSON beside it"
    )
    export.add_argument("--model", default="data/model", help="model folder (default: data/model)")
    export.set_defaults(run=cmd_export)

    serve = commands.add_parser(
        "serve", help="serve predictions over HTTP, with a page that records the microphone"
    )
    serve.add_argument("--model", default="data/model", help="model folder (default: data/model)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes, each with the model (default 1; page sessions need 1)",
    )
    serve.add_argument(
        "--max-bytes",
        type=_positive,
        default=256 * 2**20,
        help="largest upload accepted, in bytes (default: 268435456, 256 MiB)",
    )
    serve.add_argument("--classes", help=CLASSES_HELP)
    serve.set_defaults(run=cmd_serve)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
