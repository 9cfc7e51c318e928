//! Token verification (`SignedTokens::verify`): arbitrary strings, anything signed with the right key (so that the
//! fuzzer gets past the signature to the payload and the claims), claims built from arbitrary parts, and valid
//! tokens edited without being signed again (which must never verify).
#![no_main]

use arbitrary::Arbitrary;
use kf_core::auth::{AuthError, Principal};
use kf_core::model::{AgentId, TenantId, VisitorId};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

#[derive(Arbitrary, Debug)]
enum Role {
    Visitor,
    Agent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip(u16, u8),
    Insert(u16, u8),
    Delete(u16),
    Truncate(u16),
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any text.
    Raw(String),
    /// `<text>.<its signature>`.
    Signed(String),
    /// `kf1.<base64 of these bytes>.<signature>`.
    Payload(Vec<u8>),
    /// Signed claims from these parts.
    Claims {
        t: String,
        r: Role,
        s: String,
        exp: u64,
        extra: Option<(String, String)>,
    },
    /// A valid token, edited and not signed again.
    Edited { s: String, edits: Vec<Edit> },
}

fn role(role: &Role) -> &str {
    match role {
        Role::Visitor => "visitor",
        Role::Agent => "agent",
        Role::Other(other) => other,
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(text) => {
            let _ = kf_fuzz::check_token(&text);
        }
        Input::Signed(text) => {
            let _ = kf_fuzz::check_token(&kf_fuzz::sign(&text));
        }
        Input::Payload(bytes) => {
            let _ = kf_fuzz::check_token(&kf_fuzz::sign_payload(&bytes));
        }
        Input::Claims { t, r, s, exp, extra } => {
            let mut claims = json!({"t": t, "r": role(&r), "s": s, "exp": exp});
            if let Some((key, value)) = extra {
                claims[key] = json!(value);
            }
            // Claims as written (an `extra` may have replaced one of them).
            let (t, r, s, exp) = (
                claims["t"].as_str().map(str::to_owned),
                claims["r"].as_str().map(str::to_owned),
                claims["s"].as_str().map(str::to_owned),
                claims["exp"].as_u64(),
            );
            let verified = kf_fuzz::check_token(&kf_fuzz::sign_payload(claims.to_string().as_bytes()));
            let tenant = t.and_then(|t| TenantId::new(t).ok());
            let role_known = matches!(r.as_deref(), Some("visitor" | "agent"));
            match (tenant, role_known, exp, s) {
                (Some(tenant), true, Some(exp), Some(s)) => {
                    if exp <= kf_fuzz::NOW_MS / 1000 {
                        assert!(matches!(verified, Err(AuthError::Expired)), "{verified:?}");
                    } else {
                        let principal = match r.as_deref() {
                            Some("agent") => AgentId::new(s).ok().map(Principal::Agent),
                            _ => VisitorId::new(s).ok().map(Principal::Visitor),
                        };
                        match principal {
                            Some(principal) => {
                                let identity = verified.expect("valid claims verify");
                                assert_eq!((identity.tenant, identity.principal), (tenant, principal));
                            }
                            None => assert!(matches!(verified, Err(AuthError::Invalid(_))), "{verified:?}"),
                        }
                    }
                }
                _ => assert!(matches!(verified, Err(AuthError::Invalid(_))), "{verified:?}"),
            }
        }
        Input::Edited { s, edits } => {
            let s = if VisitorId::new(s.clone()).is_ok() {
                s
            } else {
                "v-1".to_owned()
            };
            let claims = json!({"t": "shop", "r": "visitor", "s": s, "exp": kf_fuzz::NOW_MS / 1000 + 60});
            let token = kf_fuzz::sign_payload(claims.to_string().as_bytes());
            assert!(kf_fuzz::check_token(&token).is_ok());
            let mut bytes = token.clone().into_bytes();
            for edit in edits.iter().take(4) {
                let at = |i: &u16| usize::from(*i) % (bytes.len() + 1);
                match edit {
                    Edit::Flip(i, mask) if !bytes.is_empty() => {
                        let i = usize::from(*i) % bytes.len();
                        bytes[i] ^= mask;
                    }
                    Edit::Insert(i, byte) => {
                        let i = at(i);
                        bytes.insert(i, *byte);
                    }
                    Edit::Delete(i) if !bytes.is_empty() => {
                        bytes.remove(usize::from(*i) % bytes.len());
                    }
                    Edit::Truncate(i) => bytes.truncate(at(i)),
                    _ => {}
                }
            }
            let edited = String::from_utf8_lossy(&bytes);
            let verified = kf_fuzz::check_token(&edited);
            if edited != token {
                assert!(verified.is_err(), "an edited token verified: {edited}");
            }
        }
    }
});
