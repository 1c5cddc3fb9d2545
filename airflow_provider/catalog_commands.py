"""The functions behind ``airflow executors-catalog`` (see :mod:`airflow_provider.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from airflow_provider import config
from executors.catalog import CacheKey, FsspecCatalog


def _catalog(args: argparse.Namespace) -> FsspecCatalog:
    if args.conn_id and args.root:
        raise SystemExit("give --conn-id or --root, not both")
    if args.conn_id:
        # The CLI is no task: the Task SDK's lookup (through a supervisor) is not there, and
        # without it only AIRFLOW_CONN_* would be found. Airflow's own CLI reads connections with
        # the core model, which also asks the secrets backends and the metadata DB.
        from airflow.models.connection import Connection

        from airflow_provider.hooks import CatalogHook

        try:
            conn = Connection.get_connection_from_secrets(args.conn_id)
        except Exception as exc:  # AirflowNotFoundException, a secrets backend that is down
            raise SystemExit(f"--conn-id {args.conn_id}: {exc}") from None
        return CatalogHook.catalog_from_connection(conn, args.conn_id)
    return FsspecCatalog(args.root or config.catalog_url())


def list_entries(args: argparse.Namespace) -> None:
    catalog = _catalog(args)
    entries = asyncio.run(catalog.list_entries(args.dataset))
    rows = [e.describe() for e in entries]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"no cached entries in {catalog.root}")
        return
    for row in rows:
        print(f"{row['key']}\n    created {row['created_at']}  outputs {', '.join(row['outputs'])}")
        print(f"    from {row['source_execution']}")
    print(f"{len(rows)} entries in {catalog.root}")


def evict(args: argparse.Namespace) -> None:
    if not args.dataset:
        raise SystemExit("--dataset is required (see `airflow executors-catalog list`)")
    catalog = _catalog(args)
    if args.tag:
        if not args.version:
            raise SystemExit("--tag needs --version")
        key = CacheKey(args.project, args.domain, args.dataset, args.version, args.tag)
        removed = asyncio.run(catalog.evict(key))
        print(f"evicted {key}" if removed else f"no entry {key}")
        return
    what = f"{args.dataset}" + (f" version {args.version}" if args.version else " (all versions)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise SystemExit(f"refusing to evict {what} without --yes")
        if input(f"evict every entry of {what}? [y/N] ").strip().lower() != "y":
            print("nothing evicted")
            return
    count = asyncio.run(catalog.evict_dataset(args.project, args.domain, args.dataset, args.version))
    print(f"evicted {count} entries of {what}")
