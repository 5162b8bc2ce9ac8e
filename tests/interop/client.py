"""Python MCP SDK client for the interoperability suite.

    python client.py cc   MCP_URL ISSUER CLIENT_ID CLIENT_SECRET
    python client.py code MCP_URL ISSUER LOGIN

Connects to the MCP server, letting the SDK discover everything from the 401 (protected
resource metadata, then the authorization server's metadata), obtains a token (client
credentials, or dynamic registration + authorization code + PKCE with a scripted login on
oidc-provider's development pages), calls `whoami` and prints its JSON answer.
"""

import asyncio
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

REDIRECT = "http://127.0.0.1:9/callback"


class Memory:
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


async def scripted_login(url: str, login: str) -> dict:
    """Follows the authorization request, submits login and consent (oidc-provider's pages or
    the crate's development authorization server's page), returns the response."""
    async with httpx2.AsyncClient(follow_redirects=False) as http:
        request = ("GET", url, None)
        for _ in range(20):
            method, target, form = request
            res = await http.request(method, target, data=form)
            if 300 <= res.status_code < 400:
                location = urljoin(target, res.headers["location"])
                if location.startswith(REDIRECT):
                    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
                request = ("GET", location, None)
                continue
            match = re.search(r'<form[^>]*action="([^"]+)"', res.text)
            if not match:
                raise RuntimeError(f"no form at {target}: {res.status_code} {res.text[:300]}")
            action = urljoin(target, match.group(1).replace("&amp;", "&"))
            if 'name="user"' in res.text:
                # The crate's development authorization server: one form, hidden inputs.
                form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', res.text))
                form.update({"user": login, "approve": "1"})
            elif 'name="login"' in res.text:
                form = {"prompt": "login", "login": login, "password": "any"}
            else:
                form = {"prompt": "consent"}
            request = ("POST", action, form)
    raise RuntimeError("too many steps in the login flow")


async def main() -> None:
    mode, url, issuer = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "cc":
        auth = ClientCredentialsOAuthProvider(
            server_url=url,
            storage=Memory(),
            client_id=sys.argv[4],
            client_secret=sys.argv[5],
            scope="mcp:tools",
            issuer=issuer,
        )
    else:
        login = sys.argv[4]
        response: dict = {}

        async def redirect(authorization_url: str) -> None:
            response.update(await scripted_login(authorization_url, login))

        async def callback() -> AuthorizationCodeResult:
            return AuthorizationCodeResult(
                code=response["code"], state=response.get("state"), iss=response.get("iss")
            )

        auth = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="interop-python",
                redirect_uris=[REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=Memory(),
            redirect_handler=redirect,
            callback_handler=callback,
        )
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whoami", {})
                print(result.content[0].text)


asyncio.run(main())
