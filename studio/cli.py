"""Command line: `aigc-studio [options]` (= `python launch.py`) and `aigc-studio add-user`."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import re
import sys
from pathlib import Path

from studio import __version__

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aigc-studio",
        description="AIGC Studio: generate, fine-tune and rate text, image and speech models in the browser.",
    )
    p.add_argument("--version", action="version", version=f"aigc-studio {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("STUDIO_DATA_DIR", "studio-data"),
        help="where datasets, runs, outputs, models and studio.db live (env STUDIO_DATA_DIR; default ./studio-data)",
    )
    p.add_argument("--offline", action="store_true", help="never contact a model hub; use cached, local or starter models")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="where models run")
    p.add_argument("--share", action="store_true", help="create a public share link (needs accounts)")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                   help="an account (repeatable); the first account given is an admin")
    p.add_argument("--auth-file", metavar="FILE", help="accounts file written by `aigc-studio add-user`")
    p.add_argument("--guest-access", choices=["none", "generate"], default="none",
                   help="with accounts: 'generate' lets visitors without an account generate and rate")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback bind or --share without accounts (anyone reaching it is admin)")
    p.add_argument("--root-path", default="",
                   help="URL prefix when served behind a reverse proxy at a sub-path, e.g. /studio")
    p.add_argument("--forwarded-allow-ips", default="", metavar="IPS",
                   help="comma-separated addresses or networks of reverse proxies whose X-Forwarded-Proto/-Host/-For "
                        "headers are believed ('*' = any peer; default: none)")
    p.add_argument("--allowed-origins", default="", metavar="ORIGINS",
                   help="comma-separated origins (e.g. https://app.example) of front ends of your own that may "
                        "send state-changing requests; writes from other sites are refused")
    p.add_argument("--memory-budget-gb", type=float, default=None,
                   help="memory models may use on the device (default: most of a GPU, half the RAM on CPU)")
    p.add_argument("--remote-text", action="append", default=[], metavar="NAME=URL@MODEL",
                   help="a text model served by an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama, "
                        "another studio), listed as remote/NAME, e.g. big=http://gpu-box:8000/v1@my-model; "
                        "its key, if any, from the environment variable STUDIO_REMOTE_KEY_NAME")
    p.add_argument("--database-url", default=os.environ.get("STUDIO_DATABASE_URL") or None, metavar="URL",
                   help="where the studio keeps its records: SQLite in the data dir (default), or "
                        "postgresql://user:password@host:port/dbname, which several replicas can share "
                        "(default: $STUDIO_DATABASE_URL; the environment keeps the password out of `ps`)")
    p.add_argument("--max-jobs", type=int, default=1, metavar="N",
                   help="training jobs this studio runs at once (default: 1); replicas on one database "
                        "share the queue, each taking jobs while it has room")
    p.add_argument("--no-jobs", action="store_true",
                   help="run no training jobs here (a replica that only serves generation); another "
                        "replica on the same database runs them")
    return p


REMOTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def parse_remote(spec: str) -> tuple[str, tuple[str, str]]:
    """`NAME=URL@MODEL` → (name, (url, model)); SystemExit saying what to fix otherwise."""
    name, _, rest = spec.partition("=")
    url, _, model = rest.rpartition("@")
    if not REMOTE_NAME.match(name) or not url.startswith(("http://", "https://")) or not model:
        raise SystemExit(f"error: --remote-text {spec!r}: write NAME=URL@MODEL, e.g. "
                         "big=http://gpu-box:8000/v1@my-model (NAME: lowercase letters, digits, - and _)")
    return name, (url.rstrip("/"), model)


def add_user_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigc-studio add-user", description="Add or update an account in an accounts file.")
    p.add_argument("user")
    p.add_argument("--auth-file", required=True, help="the accounts file (created if missing)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    return p


def add_user(argv: list[str]) -> int:
    from studio.services.auth import add_user_to_file

    args = add_user_parser().parse_args(argv)
    if ":" in args.user or not args.user.strip():
        print("error: a user name may not be empty or contain ':'", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.user}: ")
        if password != getpass.getpass("Again: "):
            print("error: the passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("error: use a password of at least 8 characters", file=sys.stderr)
        return 2
    add_user_to_file(Path(args.auth_file), args.user.strip(), password)
    print(f"Saved account '{args.user}' in {args.auth_file} (password stored as a salted hash).")
    return 0


def config_from_args(args: argparse.Namespace):
    """Turn flags into a StudioConfig, refusing unsafe combinations with a message naming the fix."""
    from studio.config import StudioConfig
    from studio.services.auth import parse_account, read_auth_file
    from studio.services.errors import StudioError

    accounts: list[tuple[str, str]] = []
    try:
        accounts += [parse_account(spec) for spec in args.auth]
        if args.auth_file:
            accounts += read_auth_file(Path(args.auth_file))
    except (StudioError, OSError) as exc:
        raise SystemExit(f"error: {getattr(exc, 'message', exc)}") from exc
    exposed = not is_loopback(args.host) or args.share
    if exposed and not accounts and not args.insecure:
        what = "--share" if args.share else f"--host {args.host}"
        raise SystemExit(
            f"error: refusing {what} without accounts: anyone who reaches the studio could train, upload and "
            "delete. Add --auth USER:PASS (or --auth-file FILE from `aigc-studio add-user`), "
            "or pass --insecure if you really mean it."
        )
    from studio.services.origin import TrustedProxies, normalize_origin

    try:
        TrustedProxies.parse(args.forwarded_allow_ips)
    except ValueError as exc:
        raise SystemExit(f"error: --forwarded-allow-ips: {exc}") from exc
    origins = [o.strip() for o in args.allowed_origins.split(",") if o.strip()]
    for origin in origins:
        if normalize_origin(origin) is None:
            raise SystemExit(f"error: --allowed-origins: '{origin}' is not an origin like https://app.example")
    if args.max_jobs < 0:
        raise SystemExit("error: --max-jobs: give 0 or more (0 is the same as --no-jobs).")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise SystemExit("error: --database-url: write postgresql://user:password@host:port/dbname "
                         "(or sqlite:///path/to/studio.db).")
    if args.guest_access != "none" and not accounts:
        raise SystemExit("error: --guest-access needs accounts (--auth or --auth-file): without accounts everyone is admin.")
    return StudioConfig(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir),
        offline=args.offline,
        device=args.device,
        share=args.share,
        accounts=accounts,
        guest_access=args.guest_access,
        insecure=args.insecure,
        memory_budget_gb=args.memory_budget_gb,
        root_path=args.root_path.rstrip("/"),
        forwarded_allow_ips=[ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()],
        allowed_origins=origins,
        remote_text=dict(parse_remote(spec) for spec in args.remote_text),
        database_url=args.database_url,
        max_concurrent_jobs=0 if args.no_jobs else args.max_jobs,
    )


def serve(config) -> None:
    import uvicorn

    from studio.app import build_app

    url = f"http://{'localhost' if is_loopback(config.host) else config.host}:{config.port}"
    print(f"AIGC Studio {__version__}: starting on {url} …", flush=True)

    def ready() -> None:  # the default models are loaded: the port opens next
        print(f"AIGC Studio {__version__}: UI {url}/ · API {url}/api/v1/docs · data {config.data_dir}", flush=True)

    app = build_app(config, on_ready=ready)
    if config.share:
        from studio.share import start_share_link

        start_share_link(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=5,
                # X-Forwarded-* are applied by the app itself, only from --forwarded-allow-ips
                root_path=config.root_path, proxy_headers=False)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "add-user":
        return add_user(argv[1:])
    args = parser().parse_args(argv)
    config = config_from_args(args)
    # The process's environment, set once here before Gradio is imported: Gradio reads its cache
    # folder (uploads, files it serves) from GRADIO_TEMP_DIR, in several modules and some at import,
    # and has no per-app option for it; the studio keeps it under the data dir like everything else.
    # No telemetry either. `build_app` itself changes nothing process-wide.
    from studio.services.scratch import gradio_cache_dir

    os.environ["GRADIO_TEMP_DIR"] = str(gradio_cache_dir(config.data_dir, config.shared_data_dir).resolve())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from engines.device import resolve_device

        resolve_device(config.device)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
