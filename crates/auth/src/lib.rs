//! Credentials: password hashing and the JWTs that carry a user's identity.
//!
//! Owns: argon2id password hashes and HS256 token issue/verify. The policy
//! service issues tokens; the gateway verifies them on every request without
//! a network call. Must never log a password, a hash or a token, and must
//! never accept a token signed with another algorithm (`alg: none` included).
//!
//! Also owns the form of usernames ([`username`]: NFKC, and the key under
//! which look-alike names collide), and HMAC-SHA256 signatures with their
//! constant-time checks ([`hmac`]: [`hmac_sha256`], [`verify_hmac_sha256_hex`],
//! [`constant_time_eq`]), which must never return early on a secret's content.

pub mod hmac;
pub mod username;

pub use hmac::{constant_time_eq, hmac_sha256, verify_hmac_sha256_hex};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use csp_domain::{Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Shortest HS256 secret accepted: 256 bits, the hash's own output size.
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew a token's `exp` is allowed (seconds).
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes (CSP_JWT_SECRET)")]
    WeakSecret,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("token encoding failed: {0}")]
    Encode(String),
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: UserId,
    /// The username, for display only; authorisation uses the user's current state.
    pub name: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// Set only in service tokens: the calling service's name. Such a token
    /// speaks for a service, never for a user (`sub` is the nil id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svc: Option<String>,
    /// This token's own id (random): logout revokes a login token by it
    /// until `exp`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
}

impl Claims {
    /// How long the token stays valid after `now` (Unix seconds), including
    /// the verifier's leeway: how long a revocation must be remembered.
    pub fn remaining(&self, now: i64) -> Duration {
        let left = self.exp.saturating_add(LEEWAY_SECS as i64) - now;
        Duration::from_secs(u64::try_from(left).unwrap_or(0))
    }

    /// Who the token speaks for.
    pub fn caller(&self) -> Caller {
        match &self.svc {
            Some(name) => Caller::Service { name: name.clone() },
            None => Caller::User {
                id: self.sub,
                name: self.name.clone(),
                role: self.role,
            },
        }
    }
}

/// Who is calling a route or an RPC, once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user, with the role their token (or the current user record) gives.
    User {
        id: UserId,
        name: String,
        role: Role,
    },
    /// Another csp service (the gateway asking for a user's state, the
    /// session-pool asking for a tool decision).
    Service { name: String },
}

/// What a route or RPC requires. Every route and every RPC has one, in a
/// table next to the service; anything missing from the table is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed: login, probes, gRPC health and reflection.
    Public,
    /// Only csp services (service tokens).
    Service,
    /// A user with at least this role, or a service acting for one.
    Role(Role),
}

/// Why a caller may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A user whose role is below `required`.
    Role { required: Role },
    /// A user calling a service-only method.
    ServiceOnly,
}

impl Denied {
    /// The text shown to the caller ("Insufficient permissions. Required role: operator.").
    pub fn message(self) -> String {
        match self {
            Denied::Role { required } => {
                format!("Insufficient permissions. Required role: {required}.")
            }
            Denied::ServiceOnly => {
                "Insufficient permissions. This method is for csp services only.".into()
            }
        }
    }
}

impl Caller {
    /// Whether this caller meets `access`. Services pass every `Role`
    /// check: they act for users the gateway already authorised.
    pub fn check(&self, access: Access) -> Result<(), Denied> {
        match (access, self) {
            (Access::Public, _) | (_, Caller::Service { .. }) => Ok(()),
            (Access::Service, Caller::User { .. }) => Err(Denied::ServiceOnly),
            (Access::Role(required), Caller::User { role, .. }) => {
                if role.includes(required) {
                    Ok(())
                } else {
                    Err(Denied::Role { required })
                }
            }
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::User { id, .. } => Some(*id),
            Caller::Service { .. } => None,
        }
    }

    /// True when the caller may act on `owner`'s resources: the owner
    /// themself, an operator or admin, or a service.
    pub fn may_act_for(&self, owner: UserId) -> bool {
        match self {
            Caller::Service { .. } => true,
            Caller::User { id, role, .. } => *id == owner || role.includes(Role::Operator),
        }
    }
}

/// Issues and verifies HS256 tokens with one shared secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &SecretString, ttl: Duration) -> Result<Self, Error> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::WeakSecret);
        }
        // Only HS256: a token naming any other algorithm, `none` included, fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        // A token that says it is not valid yet is not (RFC 7519 4.1.5).
        validation.validate_nbf = true;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs a token for the user, valid for the configured ttl.
    pub fn issue(&self, user: UserId, name: &str, role: Role) -> Result<(String, Claims), Error> {
        self.issue_for(user, name, role, self.ttl)
    }

    /// Signs a token for the user valid for `ttl`: the gateway forwards a
    /// short-lived one carrying the user's current role with each gRPC call.
    pub fn issue_for(
        &self,
        user: UserId,
        name: &str,
        role: Role,
        ttl: Duration,
    ) -> Result<(String, Claims), Error> {
        self.sign(user, name, role, None, ttl)
    }

    /// Signs a token that speaks for the service `name`, valid for `ttl`.
    pub fn issue_service(&self, name: &str, ttl: Duration) -> Result<String, Error> {
        self.sign(
            UserId(uuid::Uuid::nil()),
            name,
            Role::User,
            Some(name.to_owned()),
            ttl,
        )
        .map(|(token, _)| token)
    }

    fn sign(
        &self,
        user: UserId,
        name: &str,
        role: Role,
        svc: Option<String>,
        ttl: Duration,
    ) -> Result<(String, Claims), Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            name: name.to_owned(),
            role,
            iat: now,
            exp: now + ttl.as_secs() as i64,
            svc,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Encode(e.to_string()))?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| Error::InvalidToken(e.kind_name()))?;
        // Issued in the future: not one of ours (we issue at our own "now"),
        // whatever it would have been valid for. The security suite found
        // such tokens accepted.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if claims.iat > now.saturating_add(LEEWAY_SECS as i64) {
            return Err(Error::InvalidToken("issued in the future".into()));
        }
        Ok(claims)
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    // The error's Display can quote token contents; keep only the kind.
    fn kind_name(&self) -> String {
        use jsonwebtoken::errors::ErrorKind as K;
        match self.kind() {
            K::ExpiredSignature => "expired".into(),
            K::InvalidSignature => "bad signature".into(),
            K::InvalidAlgorithm => "algorithm not allowed".into(),
            K::MissingRequiredClaim(c) => format!("missing claim {c}"),
            K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => "malformed".into(),
            _ => "rejected".into(),
        }
    }
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, Error> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// True when `password` matches the PHC `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// The working memory of argon2id hashes and checks, kept between calls.
///
/// [`hash_password`] and [`verify_password`] allocate their memory cost
/// (19 MiB by default) on every call; interleaved with other allocations,
/// glibc's heaps fragment around those blocks and the process keeps several
/// of them per thread. A `HashMemory` allocates once, for the largest cost
/// it has met, and reuses that block: a thread that owns one holds exactly
/// that much for hashing, however many hashes it computes.
#[derive(Default)]
pub struct HashMemory {
    blocks: Vec<argon2::Block>,
}

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashMemory")
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl HashMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// How much memory this holds.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * argon2::Block::SIZE
    }

    fn blocks(&mut self, count: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < count {
            // Replaced, not grown: the old block is freed before the new one
            // is touched, and nothing is copied.
            self.blocks = Vec::new();
            self.blocks = vec![argon2::Block::new(); count];
        }
        &mut self.blocks[..count]
    }

    /// [`hash_password`], in this memory.
    pub fn hash(&mut self, password: &str) -> Result<String, Error> {
        use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
        use rand::RngCore;
        let hash_error = |e: &dyn std::fmt::Display| Error::Hash(e.to_string());
        let params = argon2::Params::default();
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        let (algorithm, version) = (argon2::Algorithm::Argon2id, argon2::Version::V0x13);
        let blocks = self.blocks(params.block_count());
        argon2::Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
            .map_err(|e| hash_error(&e))?;
        let phc = PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params).map_err(|e| hash_error(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| hash_error(&e))?),
            hash: Some(Output::new(&out).map_err(|e| hash_error(&e))?),
        };
        Ok(phc.to_string())
    }

    /// [`verify_password`], in this memory. A malformed hash never matches.
    pub fn verify(&mut self, password: &str, hash: &str) -> bool {
        use argon2::password_hash::phc::PasswordHash;
        let Ok(phc) = PasswordHash::new(hash) else {
            return false;
        };
        let (Ok(params), Ok(algorithm)) = (
            argon2::Params::try_from(&phc),
            argon2::Algorithm::try_from(phc.algorithm.as_str()),
        ) else {
            return false;
        };
        let version = match phc.version.map(argon2::Version::try_from) {
            None => argon2::Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let blocks = self.blocks(params.block_count());
        if argon2::Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, blocks)
            .is_err()
        {
            return false;
        }
        // Constant time: how much of a guess matched must not show.
        let expected = expected.as_ref();
        out.len() == expected.len()
            && out
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A random password for bootstrap accounts: 24 characters from an
/// unambiguous alphabet (about 137 bits).
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random secret for signing tokens in `csp dev` (256 bits, hex).
pub fn generate_secret() -> SecretString {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn tokens() -> Tokens {
        Tokens::new(
            &SecretString::from("x".repeat(MIN_SECRET_BYTES)),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// Regression (security suite): correctly signed tokens that are not
    /// valid yet (`nbf` ahead) or claim to be issued in the future were
    /// accepted.
    #[test]
    fn rejects_tokens_not_valid_yet() {
        let secret = "x".repeat(MIN_SECRET_BYTES);
        let t = tokens();
        let (tok, claims) = t.issue(UserId::new(), "ada", Role::Admin).unwrap();
        let sign = |c: &serde_json::Value| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(Algorithm::HS256),
                c,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let mut later = serde_json::to_value(&claims).unwrap();
        later["nbf"] = serde_json::json!(claims.iat + 3600);
        assert!(t.verify(&sign(&later)).is_err(), "nbf in an hour");
        let mut future = serde_json::to_value(&claims).unwrap();
        future["iat"] = serde_json::json!(claims.iat + 3600);
        future["exp"] = serde_json::json!(claims.exp + 3600);
        assert!(t.verify(&sign(&future)).is_err(), "issued in an hour");
        // Within the leeway, and the token as issued: fine.
        let mut skewed = serde_json::to_value(&claims).unwrap();
        skewed["iat"] = serde_json::json!(claims.iat + 2);
        skewed["nbf"] = serde_json::json!(claims.iat + 2);
        assert!(t.verify(&sign(&skewed)).is_ok());
        assert!(t.verify(&tok).is_ok());
    }

    #[test]
    fn issue_then_verify() {
        let t = tokens();
        let id = UserId::new();
        let (tok, claims) = t.issue(id, "ada", Role::Admin).unwrap();
        assert_eq!(t.verify(&tok).unwrap(), claims);
        assert_eq!(claims.sub, id);
    }

    #[test]
    fn every_token_has_its_own_id_and_a_remaining_life() {
        let t = tokens();
        let id = UserId::new();
        let (_, a) = t.issue(id, "ada", Role::User).unwrap();
        let (_, b) = t.issue(id, "ada", Role::User).unwrap();
        assert_eq!(a.jti.len(), 32);
        assert_ne!(a.jti, b.jti);
        // 60 s of ttl plus the 5 s leeway, from the moment of issue.
        assert_eq!(a.remaining(a.iat), Duration::from_secs(65));
        assert_eq!(a.remaining(a.exp + 5), Duration::ZERO);
        assert_eq!(a.remaining(a.exp + 100), Duration::ZERO);
    }

    #[test]
    fn access_rules() {
        let user = |role| Caller::User {
            id: UserId::new(),
            name: "u".into(),
            role,
        };
        let svc = Caller::Service { name: "gw".into() };
        assert_eq!(user(Role::User).check(Access::Public), Ok(()));
        assert_eq!(
            user(Role::User).check(Access::Role(Role::Operator)),
            Err(Denied::Role {
                required: Role::Operator
            })
        );
        assert_eq!(
            user(Role::Operator).check(Access::Role(Role::Operator)),
            Ok(())
        );
        assert_eq!(
            user(Role::Admin).check(Access::Role(Role::Operator)),
            Ok(())
        );
        assert!(
            user(Role::Operator)
                .check(Access::Role(Role::Admin))
                .is_err()
        );
        assert_eq!(
            user(Role::Admin).check(Access::Service),
            Err(Denied::ServiceOnly)
        );
        assert_eq!(svc.check(Access::Service), Ok(()));
        assert_eq!(svc.check(Access::Role(Role::Admin)), Ok(()));
        assert_eq!(
            Denied::Role {
                required: Role::Operator
            }
            .message(),
            "Insufficient permissions. Required role: operator."
        );
        let owner = UserId::new();
        assert!(!user(Role::User).may_act_for(owner));
        assert!(user(Role::Operator).may_act_for(owner));
    }

    #[test]
    fn service_tokens_speak_for_services() {
        let t = tokens();
        let tok = t
            .issue_service("session-pool", Duration::from_secs(30))
            .unwrap();
        assert_eq!(
            t.verify(&tok).unwrap().caller(),
            Caller::Service {
                name: "session-pool".into()
            }
        );
        let (user_tok, _) = t.issue(UserId::new(), "ada", Role::Admin).unwrap();
        assert!(matches!(
            t.verify(&user_tok).unwrap().caller(),
            Caller::User {
                role: Role::Admin,
                ..
            }
        ));
    }

    #[test]
    fn rejects_weak_secret() {
        let e = Tokens::new(&SecretString::from("short"), Duration::from_secs(1));
        assert!(matches!(e, Err(Error::WeakSecret)));
    }

    #[test]
    fn rejects_alg_none_forged_and_expired() {
        let t = tokens();
        let (tok, claims) = t.issue(UserId::new(), "ada", Role::User).unwrap();

        // alg: none with the same claims and an empty signature.
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg":"none","typ":"JWT"})),
            b64(&serde_json::to_value(&claims).unwrap())
        );
        assert!(t.verify(&none).is_err());

        // A role raised in the payload without re-signing.
        let mut parts: Vec<&str> = tok.split('.').collect();
        let mut raised = claims.clone();
        raised.role = Role::Admin;
        let forged_payload = b64(&serde_json::to_value(&raised).unwrap());
        parts[1] = &forged_payload;
        assert!(t.verify(&parts.join(".")).is_err());

        // Signed with another secret.
        let other = Tokens::new(
            &SecretString::from("y".repeat(MIN_SECRET_BYTES)),
            Duration::from_secs(60),
        )
        .unwrap();
        let (foreign, _) = other.issue(UserId::new(), "eve", Role::Admin).unwrap();
        assert!(t.verify(&foreign).is_err());

        // Expired (past the leeway).
        let mut old = claims;
        old.iat -= 3600;
        old.exp = old.iat + 10;
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &old,
            &EncodingKey::from_secret("x".repeat(MIN_SECRET_BYTES).as_bytes()),
        )
        .unwrap();
        let err = t.verify(&expired).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");

        assert!(t.verify("garbage").is_err());
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not-a-hash"));
    }

    #[test]
    fn reused_memory_hashes_and_checks_like_the_allocating_functions() {
        let mut memory = HashMemory::new();
        let h = memory.hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(memory.bytes(), 19456 * 1024);
        assert!(verify_password("correct horse", &h));
        assert!(memory.verify("correct horse", &h));
        assert!(!memory.verify("wrong", &h));
        let other = hash_password("battery staple").unwrap();
        assert!(memory.verify("battery staple", &other));
        assert!(!memory.verify("correct horse", &other));
        assert!(!memory.verify("correct horse", "not-a-hash"));
        // Another cost than the default: the memory grows to fit, once.
        let small = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(memory.verify("pw", &small));
        assert_eq!(memory.bytes(), 19456 * 1024);
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }
}
