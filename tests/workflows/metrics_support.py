"""Reading a /metrics scrape in tests."""

from prometheus_client.parser import text_string_to_metric_families


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    families = ({family.name: family for family in
                 text_string_to_metric_families(response.content.decode())}
                if response.status_code == 200 else {})
    return response, families


def samples(families, name):
    return {tuple(sorted(sample.labels.items())): sample.value
            for sample in families[name].samples if sample.name.startswith(name)}
