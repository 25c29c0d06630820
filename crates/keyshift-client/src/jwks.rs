//! The JWKS of a signing secret's accepted versions.
//!
//! Convention: a signing secret's value is either keyshift's stock key pair
//! (`{"kind","alg","private_jwk","private_key_pem","public_jwk"}`, see [`crate::keys`]),
//! whose `public_jwk` is published, or a bare private JWK in JSON, for example RFC 8037's
//! `{"kty":"OKP","crv":"Ed25519","d":"<seed>","x":"<public>"}`. Signers use the
//! AWSCURRENT value and put its version id in the token's `kid`; verifiers use the JWKS
//! built here from the accepted versions, where `kid` is the version id.
//!
//! Each public JWK keeps only public members (an allow-list: `kty`, `crv`, `x`, `y`, `n`,
//! `e`, `alg`, `x5c`, `x5t`, `x5t#S256`), so private members (`d`, `p`, `q`, `dp`, `dq`,
//! `qi`, `oth`) and any unknown extension never leave; symmetric (`oct`) keys are
//! refused, since their only member is the secret. `kid` is set to the version id,
//! `use` to `sig`, and `alg` is added where the curve names it (Ed25519/Ed448 `EdDSA`,
//! P-256 `ES256`, P-384 `ES384`, P-521 `ES512`, secp256k1 `ES256K`). No cryptography
//! happens here.

use std::fmt;

use keyshift::{SecretValue, VersionId};
use serde_json::{Map, Value};

use crate::error::LookupError;
use crate::view::Version;

/// Members copied from a private JWK to its public form.
const PUBLIC_MEMBERS: [&str; 10] = ["kty", "crv", "x", "y", "n", "e", "alg", "x5c", "x5t", "x5t#S256"];

/// Why a value cannot be published as a public signing JWK. Never names the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwkProblem {
    /// Not a JSON object.
    NotJsonObject,
    /// `kty` is `oct`: a symmetric key has no public part.
    Symmetric,
    /// `kty` is missing or not one of `OKP`, `EC`, `RSA`.
    UnsupportedKeyType,
    /// A public member the key type needs is missing or not a string.
    MissingPublicMember(&'static str),
    /// A key-agreement curve (X25519, X448), or `use` other than `sig`.
    NotForSigning,
}

impl fmt::Display for JwkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwkProblem::NotJsonObject => f.write_str("the value is not a JSON object"),
            JwkProblem::Symmetric => f.write_str("symmetric (oct) keys have no public part"),
            JwkProblem::UnsupportedKeyType => f.write_str("kty must be OKP, EC or RSA"),
            JwkProblem::MissingPublicMember(m) => write!(f, "the public member {m} is missing"),
            JwkProblem::NotForSigning => f.write_str("the key is not a signing key"),
        }
    }
}

/// A JSON Web Key Set of public signing keys, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    json: Value,
    text: String,
}

impl Jwks {
    /// The set as JSON: `{"keys":[...]}`.
    pub fn as_json(&self) -> &Value {
        &self.json
    }

    /// The set as serialized JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `kid`s in the set, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.json["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str())
    }
}

/// The public JWK of the private JWK `value`, with `kid` = `kid`.
pub fn public_jwk(kid: &VersionId, value: &SecretValue) -> Result<Value, JwkProblem> {
    let Ok(Value::Object(stored)) = serde_json::from_str::<Value>(value.expose()) else {
        return Err(JwkProblem::NotJsonObject);
    };
    // keyshift's stock key pairs hold the public JWK beside the private key; a bare
    // private JWK is its own source. Either way only the allow-listed members leave.
    let private = match stored.get("public_jwk") {
        Some(Value::Object(public)) => public.clone(),
        Some(_) => return Err(JwkProblem::NotJsonObject),
        None => stored,
    };
    let text = |m: &'static str| private.get(m).and_then(Value::as_str);
    let need = |m: &'static str| text(m).map(|_| ()).ok_or(JwkProblem::MissingPublicMember(m));
    if text("use").is_some_and(|u| u != "sig") {
        return Err(JwkProblem::NotForSigning);
    }
    let alg = match text("kty") {
        Some("oct") => return Err(JwkProblem::Symmetric),
        Some("OKP") => {
            need("x")?;
            match text("crv") {
                Some("Ed25519" | "Ed448") => Some("EdDSA"),
                Some("X25519" | "X448") => return Err(JwkProblem::NotForSigning),
                Some(_) => None,
                None => return Err(JwkProblem::MissingPublicMember("crv")),
            }
        }
        Some("EC") => {
            need("x")?;
            need("y")?;
            match text("crv") {
                Some("P-256") => Some("ES256"),
                Some("P-384") => Some("ES384"),
                Some("P-521") => Some("ES512"),
                Some("secp256k1") => Some("ES256K"),
                Some(_) => None,
                None => return Err(JwkProblem::MissingPublicMember("crv")),
            }
        }
        Some("RSA") => {
            need("n")?;
            need("e")?;
            None
        }
        _ => return Err(JwkProblem::UnsupportedKeyType),
    };
    let mut public = Map::new();
    for m in PUBLIC_MEMBERS {
        if let Some(v) = private.get(m) {
            public.insert(m.to_owned(), v.clone());
        }
    }
    if let Some(alg) = alg {
        public.entry("alg").or_insert_with(|| Value::from(alg));
    }
    public.insert("use".into(), Value::from("sig"));
    public.insert("kid".into(), Value::from(kid.as_str()));
    Ok(Value::Object(public))
}

/// The JWKS of `versions` (in order), each one's `kid` its version id.
pub fn jwks<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Result<Jwks, LookupError> {
    let keys = versions
        .into_iter()
        .map(|v| {
            public_jwk(v.id(), v.value()).map_err(|problem| LookupError::Jwk {
                version: v.id().clone(),
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let json = serde_json::json!({ "keys": keys });
    let text = json.to_string();
    Ok(Jwks { json, text })
}
