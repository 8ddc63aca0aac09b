"""The chart's side of bucket events in and webhooks out, rendered offline by Helm's own SDK.

Real: Helm v4 (`helm-python-sdk`) renders the chart and validates values against
`values.schema.json`, as `helm install` would. What is checked is what the operator and the
cluster will act on: the receiver's port and env, the events Service and Ingress reaching that
port, the operator's webhook settings, and what the operator's NetworkPolicy lets in and out.
"""

from __future__ import annotations

import ipaddress

import helm_python as helm
import pytest

from tests.chart.conftest import CHART, NAMESPACE, RELEASE, Json, Rendered, load_values

FULLNAME = f"{RELEASE}-videopipe"
EVENTS = f"{FULLNAME}-events"
EVENTS_VALUES = load_values(CHART / "ci" / "events-values.yaml")
ALWAYS_EXCEPTED = [
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
]
API_SERVER = {"apiServer": {"cidrs": ["172.16.0.2/32"]}}


def operator_container(rendered: Rendered) -> Json:
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def env_of(rendered: Rendered) -> dict[str, str]:
    return {e["name"]: e["value"] for e in operator_container(rendered)["env"]}


def operator_policy(rendered: Rendered) -> Json:
    return rendered.one("NetworkPolicy", f"{FULLNAME}-operator")["spec"]


def webhook_rule(policy: Json) -> Json:
    """The egress rule whose peer is the whole IPv4 internet (with exceptions)."""
    (rule,) = [
        r
        for r in policy["egress"]
        if any(p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for p in r.get("to", []))
    ]
    return rule


# -- the receiver in the Deployment --


def test_deployment_serves_events_on_a_named_port_with_its_env(render) -> None:
    container = operator_container(render({}))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["events"] == 8081
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VIDEOPIPE_EVENTS_PORT"] == "8081"
    assert env["VIDEOPIPE_EVENTS_MAX_BODY_BYTES"] == "1048576"
    assert env["VIDEOPIPE_WEBHOOK_WORKERS"] == "4"
    assert env["VIDEOPIPE_WEBHOOK_TIMEOUT_SECONDS"] == "10"
    assert env["VIDEOPIPE_WEBHOOK_GIVE_UP_SECONDS"] == "21600"
    # Empty lists set nothing: the operator's own defaults (metadata always refused) apply.
    assert "VIDEOPIPE_WEBHOOK_DENY_CIDRS" not in env
    assert "VIDEOPIPE_WEBHOOK_ALLOW_HOSTS" not in env


def test_values_reach_the_env(render) -> None:
    rendered: Rendered = render(
        {**EVENTS_VALUES, "events": {**EVENTS_VALUES["events"], "port": 9443}}
    )
    env = env_of(rendered)
    assert env["VIDEOPIPE_EVENTS_PORT"] == "9443"
    assert env["VIDEOPIPE_EVENTS_MAX_BODY_BYTES"] == "262144"
    assert env["VIDEOPIPE_WEBHOOK_DENY_CIDRS"] == "10.4.0.0/14,34.118.224.0/20,fd00:10::/108"
    assert env["VIDEOPIPE_WEBHOOK_ALLOW_HOSTS"] == "hooks.media.svc.cluster.local"
    assert env["VIDEOPIPE_WEBHOOK_WORKERS"] == "8"
    assert env["VIDEOPIPE_WEBHOOK_TIMEOUT_SECONDS"] == "5"
    assert env["VIDEOPIPE_WEBHOOK_GIVE_UP_SECONDS"] == "3600"
    ports = {p["name"]: p["containerPort"] for p in operator_container(rendered)["ports"]}
    assert ports["events"] == 9443


def test_events_disabled_sets_port_zero_and_creates_nothing_for_them(render) -> None:
    rendered: Rendered = render({"events": {"enabled": False}})
    assert env_of(rendered)["VIDEOPIPE_EVENTS_PORT"] == "0"
    assert "events" not in {p["name"] for p in operator_container(rendered)["ports"]}
    assert [s["metadata"]["name"] for s in rendered.of_kind("Service")] == [f"{FULLNAME}-metrics"]
    assert not rendered.of_kind("Ingress")
    ports = [p["port"] for r in operator_policy(rendered)["ingress"] for p in r["ports"]]
    assert ports == ["metrics"]
    assert "Bucket events" not in rendered.notes


def test_events_port_may_not_clash_with_the_other_ports(render) -> None:
    with pytest.raises(helm.HelmError, match=r"events\.port must differ"):
        render({"events": {"port": 9090}})
    with pytest.raises(helm.HelmError, match=r"events\.port must differ"):
        render({"events": {"port": 8080}})
    # Disabled, the port is not served: no clash.
    render({"events": {"enabled": False, "port": 9090}})


# -- the events Service and Ingress --


def test_events_service_selects_the_operator_pod_and_targets_the_port_by_name(render) -> None:
    rendered: Rendered = render({"events": {"service": {"port": 80}}})
    service = rendered.one("Service", EVENTS)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "events", "port": 80, "targetPort": "events", "protocol": "TCP"}
    ]
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    assert "events" in {p["name"] for p in operator_container(rendered)["ports"]}
    assert f"http://{EVENTS}.{NAMESPACE}.svc:80/events/<namespace>/<videosource>" in (
        rendered.notes
    )


def test_no_ingress_by_default(render) -> None:
    rendered: Rendered = render({})
    assert not rendered.of_kind("Ingress")
    assert "From outside the cluster" not in rendered.notes


def test_ingress_routes_only_events_to_the_events_service(render) -> None:
    rendered: Rendered = render(EVENTS_VALUES)
    ingress = rendered.one("Ingress", EVENTS)
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "videopipe-events-tls", "hosts": ["events.example.com"]}]
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    (rule,) = spec["rules"]
    assert rule["host"] == "events.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/events",
            "pathType": "Prefix",
            "backend": {"service": {"name": EVENTS, "port": {"name": "events"}}},
        }
    ]
    assert rendered.one("Service", EVENTS)["spec"]["ports"][0]["name"] == "events"
    assert "https://events.example.com/events/<namespace>/<videosource>" in rendered.notes


def test_ingress_without_host_or_class_matches_any(render) -> None:
    spec = render({"events": {"ingress": {"enabled": True}}}).one("Ingress")["spec"]
    assert "ingressClassName" not in spec and "tls" not in spec
    (rule,) = spec["rules"]
    assert "host" not in rule and rule["http"]["paths"][0]["path"] == "/events"


@pytest.mark.parametrize(
    "events", [{"enabled": False}, {"service": {"enabled": False}}], ids=["events", "service"]
)
def test_ingress_needs_the_events_service(render, events: Json) -> None:
    with pytest.raises(helm.HelmError, match=r"events\.ingress\.enabled needs"):
        render({"events": {**events, "ingress": {"enabled": True}}})


# -- NetworkPolicy: ingress --


def test_policy_lets_events_in_from_any_source_by_default(render) -> None:
    policy = operator_policy(render({}))
    (events,) = [r for r in policy["ingress"] if r["ports"][0]["port"] == "events"]
    assert events == {"ports": [{"port": "events", "protocol": "TCP"}]}


def test_policy_lets_events_in_from_the_given_peers_only(render) -> None:
    policy = operator_policy(render(EVENTS_VALUES))
    (events,) = [r for r in policy["ingress"] if r["ports"][0]["port"] == "events"]
    assert events["from"] == EVENTS_VALUES["networkPolicy"]["eventsFrom"]
    # metricsFrom is its own: the events peers do not reach /metrics.
    (metrics,) = [r for r in policy["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert "from" not in metrics


# -- NetworkPolicy: egress --


def test_egress_stays_open_by_default(render) -> None:
    policy = operator_policy(render({}))
    assert policy["policyTypes"] == ["Ingress"]
    assert "egress" not in policy


def test_egress_enabled_allows_dns_the_api_server_and_public_webhooks(render) -> None:
    policy = operator_policy(render({"networkPolicy": {"egress": {"enabled": True, **API_SERVER}}}))
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    dns = [r for r in policy["egress"] if {"port": 53, "protocol": "UDP"} in r["ports"]]
    assert dns == [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
    api = [r for r in policy["egress"] if r.get("to") == [{"ipBlock": {"cidr": "172.16.0.2/32"}}]]
    assert api == [
        {
            "to": [{"ipBlock": {"cidr": "172.16.0.2/32"}}],
            "ports": [{"port": 443, "protocol": "TCP"}],
        }
    ]
    webhooks = webhook_rule(policy)
    assert webhooks["to"][0]["ipBlock"]["except"] == ALWAYS_EXCEPTED
    assert webhooks["ports"] == [{"port": 443, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]
    assert len(policy["egress"]) == 3


def test_egress_webhook_rule_excepts_metadata_and_the_deny_cidrs(render) -> None:
    policy = operator_policy(render(EVENTS_VALUES))
    block = webhook_rule(policy)["to"][0]["ipBlock"]
    assert block["except"] == [*ALWAYS_EXCEPTED, "10.4.0.0/14", "34.118.224.0/20"]
    # Every except lies inside the block, as the API server requires (the IPv6 deny range
    # is left out: no IPv6 address is allowed at all).
    for cidr in block["except"]:
        assert ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(block["cidr"]))
    metadata = ipaddress.ip_address("169.254.169.254")
    assert any(metadata in ipaddress.ip_network(c) for c in block["except"])
    assert {p["port"] for p in webhook_rule(policy)["ports"]} == {443, 80, 8443}


def test_egress_dns_peers_api_port_and_extra_rules_come_from_values(render) -> None:
    values = EVENTS_VALUES["networkPolicy"]["egress"]
    egress = {**values, "apiServer": {"cidrs": ["10.0.0.1/32", "10.0.0.2/32"], "port": 6443}}
    policy = operator_policy(render({"networkPolicy": {"egress": egress}}))
    (dns,) = [r for r in policy["egress"] if {"port": 53, "protocol": "TCP"} in r["ports"]]
    assert dns["to"] == values["dns"]["to"]
    (api,) = [r for r in policy["egress"] if r["ports"] == [{"port": 6443, "protocol": "TCP"}]]
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}]
    assert policy["egress"][-1] == values["extra"][0]


def test_egress_enabled_without_the_api_server_is_refused(chart: helm.Chart, render) -> None:
    """A rule with no `to` would allow every address: refused by the schema and at render."""
    values = {"networkPolicy": {"egress": {"enabled": True}}}
    with pytest.raises(helm.HelmValuesError, match="cidrs"):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(values)


BAD_VALUES = {
    "events port out of range": ({"events": {"port": 0}}, "port"),
    "body limit as text": ({"events": {"maxBodyBytes": "1Mi"}}, "maxBodyBytes"),
    "misspelt ingress key": ({"events": {"ingress": {"hosts": ["a.example.com"]}}}, "hosts"),
    "ingress host": ({"events": {"ingress": {"host": "https://a.example.com"}}}, "host"),
    "tls entry key": ({"events": {"ingress": {"tls": [{"secret": "x"}]}}}, "secret"),
    "deny CIDR without prefix": ({"notifications": {"denyCIDRs": ["10.4.0.0"]}}, "denyCIDRs"),
    "deny CIDRs as text": ({"notifications": {"denyCIDRs": "10.4.0.0/14"}}, "denyCIDRs"),
    "allow host with a port": ({"notifications": {"allowHosts": ["a.svc:80"]}}, "allowHosts"),
    "no workers": ({"notifications": {"workers": 0}}, "workers"),
    "unknown notifications key": ({"notifications": {"retries": 3}}, "retries"),
    "no webhook ports": ({"networkPolicy": {"egress": {"webhooks": {"ports": []}}}}, "ports"),
    "api server CIDR": (
        {"networkPolicy": {"egress": {"apiServer": {"cidrs": ["kubernetes.default"]}}}},
        "cidrs",
    ),
    "egress flag as text": ({"networkPolicy": {"egress": {"enabled": "yes"}}}, "enabled"),
}


@pytest.mark.parametrize("values,mentions", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(chart: helm.Chart, values: Json, mentions: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert mentions in str(caught.value)


def test_schema_accepts_ipv6_and_ipv4_cidrs(chart: helm.Chart) -> None:
    chart.validate_schema({"notifications": {"denyCIDRs": ["10.4.0.0/14", "fd00:10::/108"]}})
    chart.validate_schema(EVENTS_VALUES)
