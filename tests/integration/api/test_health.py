from datetime import datetime

from tests.integration.api.conftest import ClientFactory
from trademk import __version__


async def test_root_names_the_service(api_client: ClientFactory) -> None:
    async with api_client() as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.json()["name"] == "Trademk"
    assert response.json()["version"] == __version__


async def test_health_reports_status_time_service_version(api_client: ClientFactory) -> None:
    async with api_client() as client:
        response = await client.get("/api/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy" and body["service"] == "Trademk"
    assert body["version"] == __version__
    assert datetime.fromisoformat(body["timestamp"]).utcoffset().total_seconds() == 0


async def test_detailed_health_checks_postgres_and_redis(
    api_client: ClientFactory, postgres_url: str, redis_url: str
) -> None:
    async with api_client(database_url=postgres_url, redis_url=redis_url) as client:
        first = (await client.get("/api/health/detailed")).json()
        second = await client.get("/api/health/detailed")
    assert second.status_code == 200
    body = second.json()
    assert body["dependencies"]["database"]["status"] == "healthy"
    assert body["dependencies"]["database"]["backend"] == "postgresql"
    assert body["dependencies"]["redis"]["status"] == "healthy"
    assert body["dependencies"]["redis"]["latency_ms"] >= 0
    assert body["uptime_seconds"] >= first["uptime_seconds"]


async def test_detailed_health_503_names_unreachable_redis(
    api_client: ClientFactory, closed_port: int
) -> None:
    async with api_client(redis_url=f"redis://127.0.0.1:{closed_port}/0") as client:
        response = await client.get("/api/health/detailed")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["dependencies"]["redis"]["status"] == "unhealthy"
    assert "redis" in body["reason"]
    assert body["dependencies"]["database"]["status"] == "healthy"


async def test_detailed_health_503_names_unreachable_postgres(
    api_client: ClientFactory, closed_port: int
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/test"
    async with api_client(database_url=url) as client:
        response = await client.get("/api/health/detailed")
        liveness = await client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert "database" in body["reason"]
    assert liveness.status_code == 200


async def test_every_response_carries_a_request_id(api_client: ClientFactory) -> None:
    async with api_client() as client:
        generated = await client.get("/api/health")
        echoed = await client.get("/api/health", headers={"X-Request-ID": "abc-123"})
        refused = await client.get("/api/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(generated.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "abc-123"
    assert refused.headers["x-request-id"] != "bad id\twith spaces"


async def test_unknown_path_is_json_404(api_client: ClientFactory) -> None:
    async with api_client() as client:
        response = await client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_openapi_docs_are_served(api_client: ClientFactory) -> None:
    async with api_client() as client:
        docs = await client.get("/docs")
        schema = await client.get("/openapi.json")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/api/health/detailed" in schema.json()["paths"]
