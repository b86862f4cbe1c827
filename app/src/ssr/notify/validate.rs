//! Checking what an admin types for a channel, each mistake named at its field
//! (the form's field name, a message that names the field). Pure.

use lettre::Address;
use std::str::FromStr;
use url::Url;

/// A secret shorter than this is refused: the signature is only as strong as it.
pub const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 512;
const MAX_URL_CHARS: usize = 2000;

/// A field and what is wrong with it.
pub type FieldErrors = Vec<(String, String)>;

/// A checked webhook: its URL as normalised, and its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// Checks a webhook's URL and secret; every mistake is reported at once.
pub fn webhook(url: &str, secret: &str) -> Result<Webhook, FieldErrors> {
    let mut errors = FieldErrors::new();
    let url = match webhook_url(url) {
        Ok(u) => Some(u),
        Err(message) => {
            errors.push(("url".into(), format!("URL: {message}")));
            None
        }
    };
    let secret = secret.trim();
    let chars = secret.chars().count();
    if secret.is_empty() {
        errors.push((
            "secret".into(),
            "Secret: is required: the receiver checks each message's signature with it".into(),
        ));
    } else if chars < MIN_SECRET_CHARS {
        errors.push((
            "secret".into(),
            format!("Secret: must have at least {MIN_SECRET_CHARS} characters (it has {chars})"),
        ));
    } else if chars > MAX_SECRET_CHARS {
        errors.push((
            "secret".into(),
            format!("Secret: must have at most {MAX_SECRET_CHARS} characters"),
        ));
    } else if secret.chars().any(char::is_control) {
        errors.push((
            "secret".into(),
            "Secret: must not contain control characters".into(),
        ));
    }
    match (url, errors.is_empty()) {
        (Some(url), true) => Ok(Webhook {
            url,
            secret: secret.to_string(),
        }),
        _ => Err(errors),
    }
}

fn webhook_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required, such as https://chat.example.net/hooks/portal".into());
    }
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("must have at most {MAX_URL_CHARS} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "must start with https:// or http://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold a user name or password: the receiver knows the portal by the signature"
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment (it is never sent)".into());
    }
    Ok(url.to_string())
}

/// Checks a recipient's address (`name@example.net`, no display name).
pub fn email(address: &str) -> Result<String, FieldErrors> {
    let address = address.trim();
    let problem = if address.is_empty() {
        Some("is required, such as oncall@example.net".to_string())
    } else {
        match Address::from_str(address) {
            Ok(a) => return Ok(a.to_string()),
            Err(e) => Some(format!("{address:?} is not an e-mail address ({e})")),
        }
    };
    Err(problem
        .map(|m| vec![("address".to_string(), format!("Address: {m}"))])
        .unwrap_or_default())
}

/// What the portal shows of a secret: its last four characters.
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-long-enough";

    fn fields(r: Result<impl std::fmt::Debug, FieldErrors>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn a_good_webhook_is_normalised() {
        let w = webhook(
            " https://Hooks.Example.NET:8443/portal?x=1 ",
            &format!(" {SECRET} "),
        )
        .unwrap();
        assert_eq!(w.url, "https://hooks.example.net:8443/portal?x=1");
        assert_eq!(w.secret, SECRET);
        assert!(webhook("http://127.0.0.1:9000/hook", SECRET).is_ok());
    }

    #[test]
    fn bad_urls_are_refused_at_the_url_field() {
        for (url, says) in [
            ("", "is required"),
            (
                "ftp://example.net/x",
                "must start with https:// or http://, not ftp://",
            ),
            ("javascript:alert(1)", "must start with https://"),
            ("example.net/hook", "is not a URL"),
            (
                "https://user:pw@example.net/",
                "must not hold a user name or password",
            ),
            ("https://example.net/#top", "#fragment"),
        ] {
            let errors = webhook(url, SECRET).unwrap_err();
            assert_eq!(errors.len(), 1, "{url}: {errors:?}");
            assert_eq!(errors[0].0, "url");
            assert!(errors[0].1.starts_with("URL: "), "{errors:?}");
            assert!(errors[0].1.contains(says), "{url}: {errors:?}");
        }
    }

    #[test]
    fn secrets_must_be_there_and_long_enough() {
        let e = webhook("https://example.net/", "   ").unwrap_err();
        assert_eq!(
            e[0],
            (
                "secret".into(),
                "Secret: is required: the receiver checks each message's signature with it".into()
            )
        );
        let e = webhook("https://example.net/", "short").unwrap_err();
        assert!(
            e[0].1.contains("at least 16 characters (it has 5)"),
            "{e:?}"
        );
        assert_eq!(
            fields(webhook("https://example.net/", &"x".repeat(600))),
            ["secret"]
        );
        assert_eq!(
            fields(webhook("https://example.net/", "0123456789abcdef\u{7}")),
            ["secret"]
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        assert_eq!(fields(webhook("gopher://x", "")), ["url", "secret"]);
    }

    #[test]
    fn email_addresses() {
        assert_eq!(email(" oncall@example.net ").unwrap(), "oncall@example.net");
        for bad in [
            "",
            "oncall",
            "oncall@",
            "@example.net",
            "On Call <oncall@example.net>",
            "a b@example.net",
        ] {
            let e = email(bad).unwrap_err();
            assert_eq!(e[0].0, "address", "{bad}");
            assert!(e[0].1.starts_with("Address: "), "{e:?}");
        }
    }

    #[test]
    fn a_hint_shows_four_characters_at_most() {
        assert_eq!(secret_hint(SECRET), "…ough");
        assert_eq!(secret_hint("ab"), "…ab");
        assert_eq!(secret_hint("ééééé"), "…éééé");
    }
}
