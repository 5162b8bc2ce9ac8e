//! DPoP proofs (RFC 9449 §4.3) through `DpopVerifier`, with proofs minted by the test kit:
//! good ones for each key type, and each kind of bad one refused with its kind.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protected_resource::Algorithm;
use protected_resource::dpop::{DpopErrorKind, DpopVerifier};
use protected_resource::testkit::{DpopProof, MockAuthorizationServer, SigningKey};
use serde_json::json;

const URL: &str = "https://mcp.example.com/mcp";
/// An access token (distinctive, so that no answer can contain it by chance).
const TOKEN: &str = "at-Zq9xV2";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn good_proofs_verify_and_name_their_key() {
    let verifier = DpopVerifier::new();
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ] {
        let key = SigningKey::generate(alg, "k");
        let proof = DpopProof::new(&key, "POST", URL)
            .access_token(TOKEN)
            .claim("nonce", "n-1")
            .sign();
        let ok = verifier
            .verify(&proof, "POST", URL, TOKEN)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.jkt, DpopProof::thumbprint(&key), "{alg}");
        assert!(!ok.jti.is_empty());
        assert_eq!(ok.nonce.as_deref(), Some("n-1"));
        assert!((ok.iat - now()).abs() <= 2);
        // Without a token (a token endpoint), `ath` is not needed.
        let bare = DpopProof::new(&key, "GET", URL).sign();
        assert!(
            verifier.verify_without_token(&bare, "GET", URL).is_ok(),
            "{alg}"
        );
    }
    // The URL is compared normalised, without query and fragment.
    let key = SigningKey::generate(Algorithm::ES256, "k");
    let proof = DpopProof::new(&key, "POST", "HTTPS://MCP.example.com:443/mcp").sign();
    assert!(
        verifier
            .verify_without_token(&proof, "POST", "https://mcp.example.com/mcp?session=1")
            .is_ok()
    );
}

#[test]
fn each_bad_proof_is_refused_with_its_kind() {
    let verifier = DpopVerifier::new().iat_window(Duration::from_secs(300));
    let key = SigningKey::generate(Algorithm::ES256, "k");
    let other = SigningKey::generate(Algorithm::ES256, "other");
    let rsa = SigningKey::generate(Algorithm::RS256, "rsa");
    let good = || DpopProof::new(&key, "POST", URL).access_token(TOKEN);
    let private_jwk = {
        let mut jwk = key.public_jwk().clone();
        jwk["d"] = json!("AAAA");
        jwk
    };
    let cases: Vec<(&str, String, DpopErrorKind)> = vec![
        (
            "wrong method",
            good().claim("htm", "GET").sign(),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "wrong url",
            good().claim("htu", "https://mcp.example.com/other").sign(),
            DpopErrorKind::UrlMismatch,
        ),
        (
            "another host",
            good().claim("htu", "https://evil.example/mcp").sign(),
            DpopErrorKind::UrlMismatch,
        ),
        (
            "stale",
            good().claim("iat", now() - 301).sign(),
            DpopErrorKind::Stale,
        ),
        (
            "future",
            good().claim("iat", now() + 301).sign(),
            DpopErrorKind::Stale,
        ),
        (
            "wrong ath",
            DpopProof::new(&key, "POST", URL)
                .access_token("other-token")
                .sign(),
            DpopErrorKind::TokenHashMismatch,
        ),
        (
            "no ath",
            DpopProof::new(&key, "POST", URL).sign(),
            DpopErrorKind::TokenHashMismatch,
        ),
        (
            "private jwk",
            good().header("jwk", private_jwk).sign(),
            DpopErrorKind::InvalidKey,
        ),
        (
            "symmetric jwk",
            good()
                .header("jwk", json!({"kty": "oct", "k": "c2VjcmV0"}))
                .sign(),
            DpopErrorKind::InvalidKey,
        ),
        (
            "key of another type than alg",
            DpopProof::new(&rsa, "POST", URL)
                .access_token(TOKEN)
                .header("alg", "ES256")
                .sign(),
            DpopErrorKind::InvalidKey,
        ),
        (
            "alg none",
            good().header("alg", "none").sign(),
            DpopErrorKind::AlgorithmNotAllowed,
        ),
        (
            "alg HS256",
            good().header("alg", "HS256").sign(),
            DpopErrorKind::AlgorithmNotAllowed,
        ),
        (
            "typ JWT",
            good().header("typ", "JWT").sign(),
            DpopErrorKind::InvalidType,
        ),
        (
            "no jti",
            good().without_claim("jti").sign(),
            DpopErrorKind::Malformed,
        ),
        (
            "long jti",
            good().claim("jti", "j".repeat(257)).sign(),
            DpopErrorKind::Malformed,
        ),
        (
            "iat a string",
            good().claim("iat", "now").sign(),
            DpopErrorKind::Malformed,
        ),
        ("not a jws", "a.b".to_owned(), DpopErrorKind::Malformed),
        (
            "crit",
            good().header("crit", json!(["x"])).sign(),
            DpopErrorKind::Malformed,
        ),
        (
            "no jwk",
            {
                let mut p = good();
                p = p.header("jwk", json!(null));
                p.sign()
            },
            DpopErrorKind::Malformed,
        ),
        (
            "too long",
            good().claim("pad", "x".repeat(9000)).sign(),
            DpopErrorKind::Malformed,
        ),
        (
            "huge iat",
            good().claim("iat", json!(1e300)).sign(),
            DpopErrorKind::Stale,
        ),
        (
            "padded key member",
            good()
                .header("jwk", {
                    let mut jwk = key.public_jwk().clone();
                    let x = jwk["x"].as_str().unwrap().to_owned();
                    jwk["x"] = json!(format!("{x}="));
                    jwk
                })
                .sign(),
            DpopErrorKind::InvalidKey,
        ),
        (
            "EdDSA alg over an EC key",
            good().header("alg", "EdDSA").sign(),
            DpopErrorKind::InvalidKey,
        ),
    ];
    for (what, proof, kind) in cases {
        let e = verifier.verify(&proof, "POST", URL, TOKEN).expect_err(what);
        assert_eq!(e.kind(), kind, "{what}");
        assert!(!e.to_string().contains(TOKEN), "{what}");
    }
    // A signature over another key than the one in the header.
    let mut forged = DpopProof::new(&key, "POST", URL).access_token(TOKEN).sign();
    let theirs = DpopProof::new(&other, "POST", URL)
        .access_token(TOKEN)
        .sign();
    let sig = theirs.rsplit('.').next().unwrap().to_owned();
    let cut = forged.rfind('.').unwrap();
    forged.replace_range(cut + 1.., &sig);
    assert_eq!(
        verifier
            .verify(&forged, "POST", URL, TOKEN)
            .unwrap_err()
            .kind(),
        DpopErrorKind::InvalidSignature
    );
    // An algorithm the verifier does not accept.
    let es = DpopVerifier::new().algorithms([Algorithm::EdDSA]);
    assert_eq!(
        es.verify(&good().sign(), "POST", URL, TOKEN)
            .unwrap_err()
            .kind(),
        DpopErrorKind::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn the_test_kit_binds_tokens_to_proof_keys() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = server.token().audience(URL).dpop_bound(&key).sign();
    let claims: serde_json::Value = {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let proof = DpopProof::new(&key, "POST", URL)
        .access_token(&token)
        .sign();
    let ok = DpopVerifier::new()
        .verify(&proof, "POST", URL, &token)
        .unwrap();
    assert_eq!(claims["cnf"]["jkt"], ok.jkt);
}
