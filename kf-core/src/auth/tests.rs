use super::*;
use crate::clock::ManualClock;
use crate::model::Timestamp;

fn identity() -> Identity {
    Identity {
        tenant: TenantId::new("shop").expect("id"),
        principal: Principal::Visitor(VisitorId::new("v-1").expect("id")),
        role: crate::auth::Role::Agent,
    }
}

#[test]
fn tags_verify_only_for_their_purpose_and_message() {
    let tokens = SignedTokens::new(&[7; 32], Arc::new(ManualClock::new(Timestamp(0)))).expect("key");
    let other = SignedTokens::new(&[8; 32], Arc::new(ManualClock::new(Timestamp(0)))).expect("key");
    let tag = tokens.tag("visitor", "shop\0v-1");
    assert!(tokens.verify_tag("visitor", "shop\0v-1", &tag));
    assert!(!tokens.verify_tag("visitor", "shop\0v-2", &tag));
    assert!(!tokens.verify_tag("agent", "shop\0v-1", &tag));
    assert!(!other.verify_tag("visitor", "shop\0v-1", &tag));
    assert!(!tokens.verify_tag("visitor", "shop\0v-1", "not base64!"));
    assert!(!tokens.verify_tag("visitor", "shop\0v-1", ""));
}

#[test]
fn round_trip_and_expiry() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = SignedTokens::new(&[7; 32], clock.clone()).expect("key");
    let token = tokens.issue(&identity(), Duration::from_secs(60));
    assert_eq!(tokens.verify(&token).expect("valid"), identity());
    clock.advance(Duration::from_secs(59));
    assert!(tokens.verify(&token).is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(matches!(tokens.verify(&token), Err(AuthError::Expired)));
}

#[test]
fn forgeries_are_refused() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = SignedTokens::new(&[7; 32], clock.clone()).expect("key");
    let other = SignedTokens::new(&[8; 32], clock).expect("key");
    let token = tokens.issue(&identity(), Duration::from_secs(60));
    assert!(matches!(other.verify(&token), Err(AuthError::Invalid(_))));
    // Swap in the claims of an agent but keep the visitor's signature.
    let agent = Identity {
        principal: Principal::Agent(AgentId::new("boss").expect("id")),
        ..identity()
    };
    let agent_token = other.issue(&agent, Duration::from_secs(60));
    let (_, signature) = token.rsplit_once('.').expect("dot");
    let (claims, _) = agent_token.rsplit_once('.').expect("dot");
    assert!(matches!(
        tokens.verify(&format!("{claims}.{signature}")),
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(tokens.verify("kf1.garbage"), Err(AuthError::Invalid(_))));
    assert!(matches!(tokens.verify("kf1..."), Err(AuthError::Invalid(_))));
    assert!(matches!(
        tokens.verify("Bearer xyz"),
        Err(AuthError::Unrecognized)
    ));
    assert!(SignedTokens::new(&[1; 31], Arc::new(ManualClock::new(Timestamp(0)))).is_err());
}

/// A signature is checked before the payload is read, so only the key's holder can reach the payload: but
/// what it signed need not start with `kf1.`. `kf1.<mac of "kf1">` signs `kf1` (the prefix without its dot);
/// it once made the payload's slice panic (found by the `token` fuzz target).
#[test]
fn a_signed_text_shorter_than_the_prefix_is_invalid() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = SignedTokens::new(&[7; 32], clock).expect("key");
    for signed in ["kf1", "kf", ""] {
        let mut mac = tokens.keys().current.mac();
        mac.update(signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        match tokens.verify(&token) {
            Err(AuthError::Invalid(_) | AuthError::Unrecognized) => {}
            other => panic!("{token}: {other:?}"),
        }
    }
}

fn id(id: &str) -> KeyId {
    KeyId::new(id).expect("key id")
}

#[test]
fn key_ids_are_short_and_plain() {
    for good in ["a", "2026-12", "k_1", &"x".repeat(MAX_KEY_ID_LEN)] {
        assert_eq!(KeyId::new(good).expect(good).as_str(), good);
    }
    for bad in ["", "a.b", "a b", "ключ", &"x".repeat(MAX_KEY_ID_LEN + 1)] {
        assert!(matches!(KeyId::new(bad), Err(KeyRingError::BadKeyId(_))), "{bad}");
    }
}

#[test]
fn rings_refuse_weak_keys_duplicates_and_retiring_the_current_key() {
    assert!(matches!(
        TokenKeys::new(id("a"), &[1; 31]),
        Err(KeyRingError::Weak(_))
    ));
    let ring = TokenKeys::new(id("a"), &[1; 32]).expect("ring");
    assert!(matches!(
        ring.clone().accept(id("b"), &[2; 31]),
        Err(KeyRingError::Weak(_))
    ));
    assert!(matches!(
        ring.clone().accept(id("a"), &[2; 32]),
        Err(KeyRingError::Duplicate(_))
    ));
    assert!(matches!(
        ring.clone().retire(&id("a")),
        Err(KeyRingError::RetiringCurrent(_))
    ));
    let ring = ring
        .accept(id("b"), &[2; 32])
        .expect("b")
        .accept(id("c"), &[3; 32])
        .expect("c");
    assert_eq!(ring.ids().map(KeyId::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
    let ring = ring.retire(&id("b")).expect("retire");
    assert_eq!(ring.ids().map(KeyId::as_str).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(ring.retired(), [id("b")]);
    assert_eq!(ring.current(), Some(&id("a")));
    // No secret in the debug output.
    assert!(!format!("{ring:?}").contains("[1, 1"));
}

/// The acceptance of key rotation: a token signed with the old key works during a rotation and is refused
/// after it; new tokens carry the new key's id.
#[test]
fn a_rotation_accepts_the_old_key_until_it_is_retired() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let old = SignedTokens::with_keys(TokenKeys::new(id("old"), &[1; 32]).expect("old"), clock.clone());
    let old_token = old.issue(&identity(), Duration::from_secs(60));
    assert!(old_token.starts_with("kf2.old."), "{old_token}");
    assert_eq!(old.verify(&old_token).expect("old"), identity());

    // Step 1: the new key is accepted before anyone signs with it.
    let step1 = TokenKeys::new(id("old"), &[1; 32])
        .expect("old")
        .accept(id("new"), &[2; 32])
        .expect("new");
    let tokens = SignedTokens::with_keys(step1, clock.clone());
    let new_signer =
        SignedTokens::with_keys(TokenKeys::new(id("new"), &[2; 32]).expect("new"), clock.clone());
    let new_token = new_signer.issue(&identity(), Duration::from_secs(60));
    assert_eq!(tokens.verify(&new_token).expect("new, accepted"), identity());
    assert_eq!(tokens.verify(&old_token).expect("old, current"), identity());

    // Step 2: the new key signs, the old one is accepted.
    let step2 = TokenKeys::new(id("new"), &[2; 32])
        .expect("new")
        .accept(id("old"), &[1; 32])
        .expect("old");
    tokens.set_keys(step2.clone());
    let clone = tokens.clone();
    let issued = clone.issue(&identity(), Duration::from_secs(60));
    assert!(
        issued.starts_with("kf2.new."),
        "a clone sees the new keys: {issued}"
    );
    assert_eq!(
        tokens.verify(&old_token).expect("old during rotation"),
        identity()
    );
    assert_eq!(tokens.verify(&issued).expect("new"), identity());

    // Step 3: the old key is retired (by name), or simply left out.
    tokens.set_keys(step2.retire(&id("old")).expect("retire"));
    assert!(matches!(
        tokens.verify(&old_token),
        Err(AuthError::Invalid("retired key"))
    ));
    tokens.set_keys(TokenKeys::new(id("new"), &[2; 32]).expect("new"));
    assert!(matches!(
        tokens.verify(&old_token),
        Err(AuthError::Invalid("unknown key id"))
    ));
    assert_eq!(tokens.verify(&issued).expect("new"), identity());
}

#[test]
fn tokens_from_before_key_ids_verify_while_their_key_is_in_the_ring() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let legacy = SignedTokens::new(&[1; 32], clock.clone()).expect("key");
    let token = legacy.issue(&identity(), Duration::from_secs(60));
    assert!(token.starts_with("kf1."), "{token}");
    let ring = TokenKeys::new(id("new"), &[2; 32])
        .expect("new")
        .accept(id("legacy"), &[1; 32])
        .expect("legacy");
    let tokens = SignedTokens::with_keys(ring.clone(), clock.clone());
    assert_eq!(tokens.verify(&token).expect("legacy key accepted"), identity());
    tokens.set_keys(ring.retire(&id("legacy")).expect("retire"));
    assert!(matches!(
        tokens.verify(&token),
        Err(AuthError::Invalid("signature mismatch"))
    ));
    // Expiry still applies to tokens of an accepted key.
    tokens.set_keys(
        TokenKeys::new(id("new"), &[2; 32])
            .expect("new")
            .accept(id("legacy"), &[1; 32])
            .expect("legacy"),
    );
    clock.advance(Duration::from_secs(60));
    assert!(matches!(tokens.verify(&token), Err(AuthError::Expired)));
}

#[test]
fn keyed_forgeries_are_refused() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let ring = TokenKeys::new(id("a"), &[1; 32])
        .expect("a")
        .accept(id("b"), &[2; 32])
        .expect("b");
    let tokens = SignedTokens::with_keys(ring, clock.clone());
    let token = tokens.issue(&identity(), Duration::from_secs(60));
    // Another key id on the same MAC: the id is signed.
    let relabelled = token.replacen("kf2.a.", "kf2.b.", 1);
    assert!(matches!(
        tokens.verify(&relabelled),
        Err(AuthError::Invalid("signature mismatch"))
    ));
    // The same claims signed by a key the ring does not hold, under a known id.
    let stranger = SignedTokens::with_keys(TokenKeys::new(id("a"), &[9; 32]).expect("a"), clock);
    let forged = stranger.issue(&identity(), Duration::from_secs(60));
    assert!(matches!(
        tokens.verify(&forged),
        Err(AuthError::Invalid("signature mismatch"))
    ));
    for garbage in [
        "kf2.",
        "kf2.a",
        "kf2.a.",
        "kf2..x.y",
        "kf2.a b.x.y",
        "kf2.zz.x.y",
        "kf2.a.x.!",
    ] {
        assert!(
            matches!(tokens.verify(garbage), Err(AuthError::Invalid(_))),
            "{garbage}"
        );
    }
    // A MAC over the id alone (no payload) is signed but holds nothing.
    let key = &tokens.keys().current;
    let mut mac = key.mac();
    mac.update(b"kf2.a");
    let token = format!("kf2.a.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert!(
        matches!(tokens.verify(&token), Err(AuthError::Invalid(_))),
        "{token}"
    );
}

#[test]
fn tags_of_an_accepted_key_still_verify() {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let old = SignedTokens::new(&[1; 32], clock.clone()).expect("key");
    let tag = old.tag("visitor", "shop\0v-1");
    let ring = TokenKeys::new(id("new"), &[2; 32])
        .expect("new")
        .accept(id("old"), &[1; 32])
        .expect("old");
    let tokens = SignedTokens::with_keys(ring.clone(), clock);
    assert!(tokens.verify_tag("visitor", "shop\0v-1", &tag));
    assert_ne!(tokens.tag("visitor", "shop\0v-1"), tag, "the current key tags");
    tokens.set_keys(ring.retire(&id("old")).expect("retire"));
    assert!(!tokens.verify_tag("visitor", "shop\0v-1", &tag));
}

#[derive(Debug)]
struct Agents;

#[async_trait]
impl Authenticator for Agents {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        match token.strip_prefix("agent:") {
            Some(id) => Ok(Identity {
                tenant: TenantId::new("shop").expect("id"),
                principal: Principal::Agent(
                    AgentId::new(id).map_err(|e| AuthError::Rejected(e.to_string()))?,
                ),
                role: crate::auth::Role::Agent,
            }),
            None => Err(AuthError::Unrecognized),
        }
    }
}

#[tokio::test]
async fn first_of_lets_hosts_plug_their_own() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = SignedTokens::new(&[7; 32], clock).expect("key");
    let token = tokens.issue(&identity(), Duration::from_secs(60));
    let chain = FirstOf::new().with(Arc::new(tokens)).with(Arc::new(Agents));
    assert_eq!(chain.authenticate(&token).await.expect("visitor"), identity());
    let agent = chain.authenticate("agent:alice").await.expect("agent");
    assert_eq!(
        agent.principal,
        Principal::Agent(AgentId::new("alice").expect("id"))
    );
    assert!(matches!(
        chain.authenticate("other").await,
        Err(AuthError::Unrecognized)
    ));
    assert!(matches!(
        chain.authenticate("kf1.x.y").await,
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn roles_ride_in_agent_tokens_and_old_tokens_are_agents() {
    let tokens = SignedTokens::new(&[7; 32], Arc::new(ManualClock::new(Timestamp(0)))).expect("key");
    let boss = Identity::agent(
        TenantId::new("shop").expect("id"),
        AgentId::new("boss").expect("id"),
    );
    for role in [Role::Agent, Role::Supervisor, Role::Admin] {
        let token = tokens.issue(&boss.clone().with_role(role), Duration::from_secs(60));
        let verified = tokens.verify(&token).expect("valid");
        assert_eq!((verified.role, &verified), (role, &boss));
    }
    // A token of before roles (no `role` claim) is an agent's; an agent token only names a role beyond it.
    let plain = tokens.issue(&boss, Duration::from_secs(60));
    let payload = plain.split('.').nth(1).expect("payload");
    let claims = URL_SAFE_NO_PAD.decode(payload).expect("base64");
    assert!(!String::from_utf8_lossy(&claims).contains("role"));
    // A visitor has no role.
    let odd = tokens.issue(&identity().with_role(Role::Admin), Duration::from_secs(60));
    assert!(matches!(
        tokens.verify(&odd),
        Err(AuthError::Invalid("a visitor has no role"))
    ));
    assert_eq!("supervisor".parse::<Role>(), Ok(Role::Supervisor));
    assert!("root".parse::<Role>().is_err());
}
