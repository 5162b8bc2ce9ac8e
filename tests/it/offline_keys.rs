//! Starting without the network and private networks, over real HTTP and TLS on 127.0.0.1:
//! seeded key sets (code and environment), private CA roots for key-set fetches, and the
//! key-cache settings and `_FILE` secrets from the environment.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use protected_resource::testkit::{JwksBehavior, MockAuthorizationServer};
use protected_resource::{
    Algorithm, AuthorizationServerEntry, ConfigErrorKind, ResourceServerAuth,
};

fn seeded(server: &MockAuthorizationServer) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().initial_jwks(server.jwks_json()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn seeded_keys_serve_at_once_and_while_every_fetch_fails() {
    let server = MockAuthorizationServer::start().await.unwrap();
    server.set_jwks_behavior(JwksBehavior::Status(500));
    let auth = seeded(&server);
    // Ready before any I/O.
    assert!(auth.readiness().is_ready());
    let stats = &auth.key_set_stats()[0];
    assert!(stats.seeded && stats.keys == 1 && stats.age.is_none());

    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    // The first use started a fetch in the background; it fails, the seed stays.
    eventually("a failed fetch", || {
        auth.key_set_stats()[0].consecutive_failures == 1
    })
    .await;
    assert_eq!(server.jwks_requests(), 1);
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert!(auth.key_set_stats()[0].seeded);
    assert!(auth.readiness().is_ready());
    assert_eq!(app.calls(), 2);

    // Other keys are still refused.
    let other = MockAuthorizationServer::start().await.unwrap();
    let forged = other
        .token()
        .claim("iss", server.issuer())
        .audience(CANON)
        .sign();
    // (An unknown kid while the server fails: it may be a new key, so "try later".)
    let a = app.with_token(&forged).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn the_first_good_fetch_replaces_the_seed_for_good() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let old_token = server.token().audience(CANON).sign();
    let auth = seeded(&server);
    // The server rotates away from the seeded key before we ever talk to it.
    server.rotate(Algorithm::RS256);
    let new_token = server.token().audience(CANON).sign();
    let app = App::new(auth.clone());

    assert_eq!(app.with_token(&old_token).await.status, StatusCode::OK);
    eventually("the seed replaced", || !auth.key_set_stats()[0].seeded).await;
    assert_eq!(app.with_token(&new_token).await.status, StatusCode::OK);
    app.assert_invalid_token(&old_token, "The access token signing key is unknown")
        .await;

    // The server failing afterwards does not bring the withdrawn key back: its last answer
    // is served stale, and a kid not in it waits for the server.
    server.set_jwks_behavior(JwksBehavior::Status(500));
    skip(Duration::from_secs(2 * 3600)).await;
    assert_eq!(app.with_token(&new_token).await.status, StatusCode::OK);
    let calls = app.calls();
    let a = app.with_token(&old_token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.calls(), calls);
    assert!(!auth.key_set_stats()[0].seeded);
}

#[tokio::test]
async fn seeds_that_can_not_be_trusted_fail_the_build_naming_the_field() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let build = |entry: AuthorizationServerEntry| {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(entry)
            .build()
            .unwrap_err()
    };
    let private = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#;
    for (jwks, says) in [
        (private, "key 0: contains private key material"),
        (r#"{"keys": []}"#, "holds no key"),
        ("not json", "not a JWK set"),
        (r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#, "key 0"),
    ] {
        let e = build(server.entry().initial_jwks(jwks));
        assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
        assert_eq!(e.field(), "authorization_servers[0].initial_jwks");
        assert!(e.message().contains(says), "{e}");
        assert!(!e.to_string().contains("nWGxne"), "{e}");
    }
    // Two entries sharing a key set may not both seed it.
    let e = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().initial_jwks(server.jwks_json()))
        .authorization_server(
            AuthorizationServerEntry::new("https://other.example")
                .jwks_uri(server.jwks_uri())
                .initial_jwks(server.jwks_json()),
        )
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "authorization_servers[1].initial_jwks");
}

fn env_entry(server: &MockAuthorizationServer, extra: &str) -> String {
    format!(
        r#"[{{"issuer": "{}", "jwks_uri": "{}"{extra}}}]"#,
        server.issuer(),
        server.jwks_uri()
    )
}

fn from_env(vars: &[(&str, &str)]) -> Result<ResourceServerAuth, protected_resource::ConfigError> {
    ResourceServerAuth::builder()
        .with_env_vars(
            [("MCP_SERVER_AUTH_CANONICAL_URL", CANON)]
                .iter()
                .chain(vars)
                .copied(),
        )
        .build()
}

#[tokio::test]
async fn seeds_from_the_environment_inline_or_in_a_file() {
    let server = MockAuthorizationServer::start().await.unwrap();
    server.set_jwks_behavior(JwksBehavior::Status(503));
    let token = server.token().audience(CANON).sign();
    let dir = std::env::temp_dir().join(format!("pr-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, server.jwks_json()).unwrap();

    let inline = env_entry(
        &server,
        &format!(r#", "initial_jwks": {}"#, server.jwks_json()),
    );
    let in_file = env_entry(
        &server,
        &format!(r#", "initial_jwks_file": "{}""#, file.display()),
    );
    for servers in [inline, in_file] {
        let auth = from_env(&[("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", &servers)]).unwrap();
        assert!(auth.readiness().is_ready());
        let app = App::new(auth);
        assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    }

    let both = env_entry(
        &server,
        &format!(
            r#", "initial_jwks": {}, "initial_jwks_file": "{}""#,
            server.jwks_json(),
            file.display()
        ),
    );
    let e = from_env(&[("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", &both)]).unwrap_err();
    assert_eq!(e.field(), "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0]");
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 1024 * 1024 + 1]).unwrap();
    let too_big = env_entry(
        &server,
        &format!(r#", "initial_jwks_file": "{}""#, big.display()),
    );
    let e = from_env(&[("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", &too_big)]).unwrap_err();
    assert_eq!(
        e.field(),
        "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS[0].initial_jwks_file"
    );
    assert!(e.message().contains("larger than"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn key_cache_settings_come_from_the_environment_and_code_wins() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let servers = env_entry(&server, "");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = vec![("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.as_str())];
        vars.extend_from_slice(extra);
        from_env(&vars)
    };

    // A lifetime of two minutes: a request after 130 s fetches again (the default is 1 h).
    let auth = with(&[("MCP_SERVER_AUTH_JWKS_CACHE_TTL", "120")]).unwrap();
    let app = App::new(auth);
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    skip(Duration::from_secs(130)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);

    // The token size limit.
    let auth = with(&[("MCP_SERVER_AUTH_MAX_TOKEN_BYTES", "64")]).unwrap();
    App::new(auth)
        .assert_invalid_token(&token, "The access token is too large")
        .await;

    // Errors name the variable: not a number, and a value out of range.
    for (var, value, kind) in [
        (
            "MCP_SERVER_AUTH_JWKS_FETCH_TIMEOUT",
            "soon",
            ConfigErrorKind::InvalidEnvironment,
        ),
        (
            "MCP_SERVER_AUTH_JWKS_REFETCH_COOLDOWN",
            "0.5",
            ConfigErrorKind::InvalidValue,
        ),
        (
            "MCP_SERVER_AUTH_JWKS_CACHE_TTL_MIN",
            "100000",
            ConfigErrorKind::InvalidValue,
        ),
        (
            "MCP_SERVER_AUTH_JWKS_MAX_RESPONSE_BYTES",
            "0",
            ConfigErrorKind::InvalidEnvironment,
        ),
        (
            "MCP_SERVER_AUTH_MAX_TOKEN_BYTES",
            "-1",
            ConfigErrorKind::InvalidEnvironment,
        ),
        (
            "MCP_SERVER_AUTH_JWKS_STALE_IF_ERROR",
            "1e12",
            ConfigErrorKind::InvalidValue,
        ),
    ] {
        let e = with(&[(var, value)]).unwrap_err();
        assert_eq!((e.field(), e.kind()), (var, kind), "{e}");
    }

    // A value set in code wins over the environment's.
    let ok = ResourceServerAuth::builder()
        .jwks_refetch_cooldown(Duration::from_secs(2))
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            ("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.as_str()),
            ("MCP_SERVER_AUTH_JWKS_REFETCH_COOLDOWN", "0.5"),
        ])
        .build();
    assert!(ok.is_ok());
}

#[test]
fn secret_files_are_read_with_a_size_bound() {
    let dir = std::env::temp_dir().join(format!("pr-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("key");
    std::fs::write(&big, vec![b'A'; 64 * 1024 + 1]).unwrap();
    let path = big.display().to_string();
    let e = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(AuthorizationServerEntry::new("https://auth.example.com"))
        .with_env_vars([("MCP_SERVER_SESSION_KEY_FILE", path.as_str())])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "MCP_SERVER_SESSION_KEY_FILE");
    assert!(e.message().contains("larger than 65536 bytes"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

mod tls {
    //! A key set served over TLS by a certificate of a CA made for the test.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A CA (its PEM) and a server for `localhost` signed by it, serving `body` at `/jwks`.
    pub struct TlsJwks {
        pub ca_pem: String,
        pub addr: SocketAddr,
        _task: tokio::task::JoinHandle<()>,
    }

    struct TlsListener {
        tcp: TcpListener,
        acceptor: TlsAcceptor,
    }

    impl axum::serve::Listener for TlsListener {
        type Io = tokio_rustls::server::TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            // Bounded by the test's lifetime: the task is aborted with the server.
            loop {
                let Ok((tcp, addr)) = self.tcp.accept().await else {
                    continue;
                };
                if let Ok(tls) = self.acceptor.accept(tcp).await {
                    return (tls, addr);
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            self.tcp.local_addr()
        }
    }

    impl TlsJwks {
        pub async fn start(body: String) -> Self {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
            let leaf_key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &ca)
                .unwrap();
            let config = ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap();
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            let listener = TlsListener {
                tcp,
                acceptor: TlsAcceptor::from(Arc::new(config)),
            };
            let app = axum::Router::new().route(
                "/jwks",
                axum::routing::get(move || {
                    let body = body.clone();
                    async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
                }),
            );
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Self {
                ca_pem: ca.pem(),
                addr,
                _task: task,
            }
        }

        pub fn jwks_uri(&self) -> String {
            format!("https://localhost:{}/jwks", self.addr.port())
        }
    }

    impl Drop for TlsJwks {
        fn drop(&mut self) {
            self._task.abort();
        }
    }
}

#[tokio::test]
async fn keys_behind_a_private_ca_are_fetched_with_its_root_only() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let tls = tls::TlsJwks::start(server.jwks_json()).await;
    let entry = AuthorizationServerEntry::new(server.issuer()).jwks_uri(tls.jwks_uri());
    let token = server.token().audience(CANON).sign();
    let builder = || {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(entry.clone())
    };

    // Without the root the certificate is not trusted: no keys, 503, nothing called.
    let app = App::new(builder().build().unwrap());
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(app.calls(), 0);

    // With it, in code or from the environment (inline or in a file), the keys are fetched.
    let file = std::env::temp_dir().join(format!("pr-ca-{}.pem", std::process::id()));
    std::fs::write(&file, &tls.ca_pem).unwrap();
    let path = file.display().to_string();
    for auth in [
        builder()
            .add_root_certificates_pem(tls.ca_pem.clone())
            .build(),
        builder()
            .with_env_vars([("MCP_SERVER_AUTH_CA_CERTS", tls.ca_pem.as_str())])
            .build(),
        builder()
            .with_env_vars([("MCP_SERVER_AUTH_CA_CERTS_FILE", path.as_str())])
            .build(),
    ] {
        let app = App::new(auth.unwrap());
        let a = app.with_token(&token).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let _ = std::fs::remove_file(&file);

    // Documents that are not CA certificates fail the build.
    let key_pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    for (pem, says) in [
        (format!("{}{key_pem}", tls.ca_pem), "private key"),
        ("no certificate here".to_owned(), "no certificate"),
    ] {
        let e = builder()
            .add_root_certificates_pem(pem)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "root_certificates");
        assert!(e.message().contains(says), "{e}");
    }
    let e = builder()
        .with_env_vars([(
            "MCP_SERVER_AUTH_CA_CERTS",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "MCP_SERVER_AUTH_CA_CERTS");
}
