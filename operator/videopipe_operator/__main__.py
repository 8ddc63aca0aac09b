"""`videopipe operator`: run the operator against the current kubeconfig or in-cluster.

kopf runs programmatically (`kopf.run`), with the handlers of `handlers.py`, the namespaces to
serve (`--namespace`, repeatable, or `--all-namespaces`), and kopf peering off with
`--standalone` (kopf's peering is priority-based, not a leader election: run one replica).
Metrics and the health endpoints are served from threads before kopf starts, so a probe can
see an operator that is starting. `main(argv) -> int` is what the `videopipe` console script
and tests call.
"""

from __future__ import annotations

import argparse
import logging
import sys

from videopipe import __version__

from videopipe_operator.config import Config


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="videopipe operator",
        description="Turn videos in S3 pending/ folders into Kubernetes Jobs (VideoSources).",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve VideoSources in this namespace (repeatable; default: $VIDEOPIPE_NAMESPACES, "
        "else all namespaces)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve VideoSources cluster-wide"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument(
        "--health-port", type=int, default=8080, help="/healthz and /readyz port (0: off)"
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="/metrics port (0: off)")
    parser.add_argument(
        "--events-port",
        type=int,
        default=None,
        help="bucket-event receiver port, POST /events/<namespace>/<source> "
        "(default: $VIDEOPIPE_EVENTS_PORT, else 8081; 0: off)",
    )
    parser.add_argument("--bind", default="0.0.0.0", help="address for the ports above")
    parser.add_argument(
        "--standalone", action="store_true", help="no kopf peering (run exactly one replica)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--version", action="version", version=f"videopipe {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = Config.from_env()
    except ValueError as e:
        print(f"videopipe operator: {e}", file=sys.stderr)
        return 2

    import kopf
    from videopipe import webhooks

    from videopipe_operator import eventserver, handlers, kube, metrics
    from videopipe_operator.context import Context
    from videopipe_operator.coordination import Coordination
    from videopipe_operator.deliveries import Deliveries
    from videopipe_operator.eventsources import EventSources
    from videopipe_operator.health import Health
    from videopipe_operator.hints import Hints
    from videopipe_operator.watches import WatchAudit

    level = "DEBUG" if args.verbose else "WARNING" if args.quiet else config.log_level.upper()
    kopf.configure(debug=args.verbose, verbose=args.verbose, quiet=args.quiet)
    logging.getLogger().setLevel(level)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    if not args.verbose:  # "Handler 'job_changed' succeeded." for every Job event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    namespaces = args.namespace or ([] if args.all_namespaces else config.namespace_list)
    try:
        api = kube.load_client(args.kubeconfig)
    except Exception as e:
        print(f"videopipe operator: cannot load Kubernetes credentials: {e}", file=sys.stderr)
        return 2
    verbs = kube.Kube(api, on_api_error=metrics.count_kube_api_error)
    try:
        guard = webhooks.Guard.from_env()
    except ValueError as e:
        print(f"videopipe operator: {e}", file=sys.stderr)
        return 2
    policy = webhooks.DeliveryPolicy(config.webhook_timeout_seconds, config.webhook_give_up_seconds)
    deliveries = Deliveries(verbs, guard, policy, workers=config.webhook_workers)
    hints, coordination = Hints(), Coordination()
    events = EventSources(verbs, hints, coordination, tuple(namespaces))
    ctx = Context(
        kube=verbs,
        coordination=coordination,
        hints=hints,
        events=events,
        config=config,
        health=Health(config.liveness_polls, config.liveness_grace_seconds),
        watches=WatchAudit(config.watch_silence_seconds),
        namespaces=tuple(namespaces),
        in_cluster=kube.in_cluster(args.kubeconfig),
        deliveries=deliveries,
    )
    ctx.health.add_check("watch", ctx.watches.check)
    try:
        metrics.serve(args.metrics_port, args.bind)
        ctx.health.serve(args.health_port, args.bind)
        port = config.events_port if args.events_port is None else args.events_port
        receiver = (
            eventserver.start(
                port,
                events.resolve,
                events.push_hint,
                host=args.bind,
                max_body=config.events_max_body_bytes,
            )
            if port
            else None
        )
    except OSError as e:
        print(f"videopipe operator: cannot listen: {e}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info(
        "videopipe operator %s serving %s",
        __version__,
        ", ".join(namespaces) if namespaces else "all namespaces",
    )
    assert handlers  # imported for its registrations
    kopf.run(
        standalone=args.standalone or None,
        clusterwide=not namespaces,
        namespaces=namespaces,
        memo=kopf.Memo(ctx=ctx),
    )
    ctx.health.close()
    if receiver is not None:
        receiver.close()
    events.close()
    deliveries.close()  # what is still owed stays Pending in the VideoJobs, for the next run
    return 0


if __name__ == "__main__":
    sys.exit(main())
