//! The messages of every error in every supported language: one table per language, written
//! in the register of a checkout form (short, polite, no jargon), not glossed word for word
//! from English. A test checks that every language has every error and that no two errors
//! share a message within a language.

use super::Error;

/// A language's messages, keyed by error.
pub type Table = &'static [(Error, &'static str)];

/// A supported language.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    /// English.
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Spanish.
    Es,
    /// Italian.
    It,
    /// Dutch.
    Nl,
    /// Brazilian Portuguese.
    PtBr,
    /// Polish.
    Pl,
    /// Swedish.
    Sv,
    /// Japanese.
    Ja,
    /// Simplified Chinese.
    ZhHans,
}

impl Locale {
    /// Every supported language.
    pub const ALL: [Locale; 11] = [
        Locale::En,
        Locale::De,
        Locale::Fr,
        Locale::Es,
        Locale::It,
        Locale::Nl,
        Locale::PtBr,
        Locale::Pl,
        Locale::Sv,
        Locale::Ja,
        Locale::ZhHans,
    ];

    /// The BCP 47 tag: `en`, `de`, …, `pt-BR`, `zh-Hans`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
            Locale::Es => "es",
            Locale::It => "it",
            Locale::Nl => "nl",
            Locale::PtBr => "pt-BR",
            Locale::Pl => "pl",
            Locale::Sv => "sv",
            Locale::Ja => "ja",
            Locale::ZhHans => "zh-Hans",
        }
    }

    /// The supported language a BCP 47 tag asks for, if any. Matching is case-insensitive and
    /// by language, so `de-AT` is German; `pt` and `pt-PT` get Brazilian Portuguese (the one
    /// Portuguese there is), `zh`, `zh-CN`, `zh-SG` and `zh-Hans-…` Simplified Chinese. A
    /// traditional-script Chinese tag (`zh-TW`, `zh-HK`, `zh-Hant`) is not supported.
    pub fn parse(tag: &str) -> Option<Locale> {
        let tag = tag.trim();
        let mut parts = tag.split(['-', '_']);
        let language = parts.next()?.to_ascii_lowercase();
        let rest: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
        Some(match language.as_str() {
            "en" => Locale::En,
            "de" => Locale::De,
            "fr" => Locale::Fr,
            "es" => Locale::Es,
            "it" => Locale::It,
            "nl" => Locale::Nl,
            "pt" => Locale::PtBr,
            "pl" => Locale::Pl,
            "sv" => Locale::Sv,
            "ja" => Locale::Ja,
            "zh" => {
                let traditional = rest
                    .iter()
                    .any(|p| matches!(p.as_str(), "hant" | "tw" | "hk" | "mo"));
                if traditional {
                    return None;
                }
                Locale::ZhHans
            }
            _ => return None,
        })
    }

    /// The first supported language of a preference list (such as `navigator.languages`), or
    /// English.
    pub fn negotiate<'a>(preferred: impl IntoIterator<Item = &'a str>) -> Locale {
        preferred
            .into_iter()
            .find_map(Locale::parse)
            .unwrap_or(Locale::En)
    }

    /// This language's messages.
    pub fn table(self) -> Table {
        match self {
            Locale::En => EN,
            Locale::De => DE,
            Locale::Fr => FR,
            Locale::Es => ES,
            Locale::It => IT,
            Locale::Nl => NL,
            Locale::PtBr => PT_BR,
            Locale::Pl => PL,
            Locale::Sv => SV,
            Locale::Ja => JA,
            Locale::ZhHans => ZH_HANS,
        }
    }
}

/// The message for `error` in `table`, falling back to English.
pub fn lookup(table: Table, error: Error) -> &'static str {
    table
        .iter()
        .chain(EN.iter())
        .find(|(e, _)| *e == error)
        .map_or("Unknown error.", |(_, m)| m)
}

/// English.
pub const EN: Table = &[
    (Error::IncompleteNumber, "Your card number is incomplete."),
    (Error::InvalidNumber, "Your card number is invalid."),
    (
        Error::IncompleteExpiry,
        "Your card's expiration date is incomplete.",
    ),
    (
        Error::InvalidExpiryMonth,
        "Your card's expiration month is invalid.",
    ),
    (
        Error::InvalidExpiryYear,
        "Your card's expiration year is invalid.",
    ),
    (
        Error::InvalidExpiryYearPast,
        "Your card's expiration date is in the past.",
    ),
    (
        Error::IncompleteCvc,
        "Your card's security code is incomplete.",
    ),
    (Error::InvalidCvc, "Your card's security code is invalid."),
    (Error::InvalidName, "The cardholder name is invalid."),
    (
        Error::InvalidKey,
        "The vault key is not a valid JWK, JWKS or PEM.",
    ),
    (
        Error::KeyTooSmall,
        "The vault key must be an RSA key of at least 2048 bits.",
    ),
    (Error::UnsupportedKey, "The vault key must be an RSA key."),
    (
        Error::KeyNotForEncryption,
        "The vault key is not an encryption key.",
    ),
    (
        Error::NoEncryptionKey,
        "The key set holds no usable encryption key.",
    ),
    (Error::Crypto, "The card could not be sealed."),
];

/// German.
pub const DE: Table = &[
    (
        Error::IncompleteNumber,
        "Die Kartennummer ist unvollständig.",
    ),
    (Error::InvalidNumber, "Die Kartennummer ist ungültig."),
    (
        Error::IncompleteExpiry,
        "Das Ablaufdatum ist unvollständig.",
    ),
    (Error::InvalidExpiryMonth, "Der Ablaufmonat ist ungültig."),
    (Error::InvalidExpiryYear, "Das Ablaufjahr ist ungültig."),
    (
        Error::InvalidExpiryYearPast,
        "Das Ablaufdatum liegt in der Vergangenheit.",
    ),
    (
        Error::IncompleteCvc,
        "Die Kartenprüfnummer ist unvollständig.",
    ),
    (Error::InvalidCvc, "Die Kartenprüfnummer ist ungültig."),
    (
        Error::InvalidName,
        "Der Name des Karteninhabers ist ungültig.",
    ),
    (
        Error::InvalidKey,
        "Der Vault-Schlüssel ist kein gültiger JWK, JWKS oder PEM.",
    ),
    (
        Error::KeyTooSmall,
        "Der Vault-Schlüssel muss ein RSA-Schlüssel mit mindestens 2048 Bit sein.",
    ),
    (
        Error::UnsupportedKey,
        "Der Vault-Schlüssel muss ein RSA-Schlüssel sein.",
    ),
    (
        Error::KeyNotForEncryption,
        "Der Vault-Schlüssel ist nicht zum Verschlüsseln bestimmt.",
    ),
    (
        Error::NoEncryptionKey,
        "Der Schlüsselsatz enthält keinen verwendbaren Schlüssel zum Verschlüsseln.",
    ),
    (
        Error::Crypto,
        "Die Kartendaten konnten nicht verschlüsselt werden.",
    ),
];

/// French.
pub const FR: Table = &[
    (Error::IncompleteNumber, "Le numéro de carte est incomplet."),
    (Error::InvalidNumber, "Le numéro de carte est invalide."),
    (
        Error::IncompleteExpiry,
        "La date d'expiration est incomplète.",
    ),
    (
        Error::InvalidExpiryMonth,
        "Le mois d'expiration est invalide.",
    ),
    (
        Error::InvalidExpiryYear,
        "L'année d'expiration est invalide.",
    ),
    (
        Error::InvalidExpiryYearPast,
        "La date d'expiration est dépassée.",
    ),
    (Error::IncompleteCvc, "Le code de sécurité est incomplet."),
    (Error::InvalidCvc, "Le code de sécurité est invalide."),
    (
        Error::InvalidName,
        "Le nom du titulaire de la carte est invalide.",
    ),
    (
        Error::InvalidKey,
        "La clé du coffre n'est pas un JWK, un JWKS ou un PEM valide.",
    ),
    (
        Error::KeyTooSmall,
        "La clé du coffre doit être une clé RSA d'au moins 2048 bits.",
    ),
    (
        Error::UnsupportedKey,
        "La clé du coffre doit être une clé RSA.",
    ),
    (
        Error::KeyNotForEncryption,
        "La clé du coffre n'est pas une clé de chiffrement.",
    ),
    (
        Error::NoEncryptionKey,
        "Le jeu de clés ne contient aucune clé de chiffrement utilisable.",
    ),
    (Error::Crypto, "La carte n'a pas pu être chiffrée."),
];

/// Spanish.
pub const ES: Table = &[
    (
        Error::IncompleteNumber,
        "El número de tarjeta está incompleto.",
    ),
    (Error::InvalidNumber, "El número de tarjeta no es válido."),
    (
        Error::IncompleteExpiry,
        "La fecha de caducidad está incompleta.",
    ),
    (
        Error::InvalidExpiryMonth,
        "El mes de caducidad no es válido.",
    ),
    (
        Error::InvalidExpiryYear,
        "El año de caducidad no es válido.",
    ),
    (
        Error::InvalidExpiryYearPast,
        "La fecha de caducidad ya ha pasado.",
    ),
    (
        Error::IncompleteCvc,
        "El código de seguridad está incompleto.",
    ),
    (Error::InvalidCvc, "El código de seguridad no es válido."),
    (Error::InvalidName, "El nombre del titular no es válido."),
    (
        Error::InvalidKey,
        "La clave de la bóveda no es un JWK, JWKS o PEM válido.",
    ),
    (
        Error::KeyTooSmall,
        "La clave de la bóveda debe ser una clave RSA de al menos 2048 bits.",
    ),
    (
        Error::UnsupportedKey,
        "La clave de la bóveda debe ser una clave RSA.",
    ),
    (
        Error::KeyNotForEncryption,
        "La clave de la bóveda no es una clave de cifrado.",
    ),
    (
        Error::NoEncryptionKey,
        "El conjunto de claves no contiene ninguna clave de cifrado utilizable.",
    ),
    (Error::Crypto, "No se ha podido cifrar la tarjeta."),
];

/// Italian.
pub const IT: Table = &[
    (
        Error::IncompleteNumber,
        "Il numero della carta è incompleto.",
    ),
    (Error::InvalidNumber, "Il numero della carta non è valido."),
    (Error::IncompleteExpiry, "La data di scadenza è incompleta."),
    (
        Error::InvalidExpiryMonth,
        "Il mese di scadenza non è valido.",
    ),
    (Error::InvalidExpiryYear, "L'anno di scadenza non è valido."),
    (
        Error::InvalidExpiryYearPast,
        "La data di scadenza è già passata.",
    ),
    (Error::IncompleteCvc, "Il codice di sicurezza è incompleto."),
    (Error::InvalidCvc, "Il codice di sicurezza non è valido."),
    (Error::InvalidName, "Il nome del titolare non è valido."),
    (
        Error::InvalidKey,
        "La chiave del vault non è un JWK, JWKS o PEM valido.",
    ),
    (
        Error::KeyTooSmall,
        "La chiave del vault deve essere una chiave RSA di almeno 2048 bit.",
    ),
    (
        Error::UnsupportedKey,
        "La chiave del vault deve essere una chiave RSA.",
    ),
    (
        Error::KeyNotForEncryption,
        "La chiave del vault non è una chiave di cifratura.",
    ),
    (
        Error::NoEncryptionKey,
        "Il set di chiavi non contiene alcuna chiave di cifratura utilizzabile.",
    ),
    (Error::Crypto, "Non è stato possibile cifrare la carta."),
];

/// Dutch.
pub const NL: Table = &[
    (Error::IncompleteNumber, "Het kaartnummer is onvolledig."),
    (Error::InvalidNumber, "Het kaartnummer is ongeldig."),
    (Error::IncompleteExpiry, "De vervaldatum is onvolledig."),
    (Error::InvalidExpiryMonth, "De vervalmaand is ongeldig."),
    (Error::InvalidExpiryYear, "Het vervaljaar is ongeldig."),
    (
        Error::InvalidExpiryYearPast,
        "De vervaldatum ligt in het verleden.",
    ),
    (Error::IncompleteCvc, "De beveiligingscode is onvolledig."),
    (Error::InvalidCvc, "De beveiligingscode is ongeldig."),
    (
        Error::InvalidName,
        "De naam van de kaarthouder is ongeldig.",
    ),
    (
        Error::InvalidKey,
        "De vault-sleutel is geen geldige JWK, JWKS of PEM.",
    ),
    (
        Error::KeyTooSmall,
        "De vault-sleutel moet een RSA-sleutel van minstens 2048 bits zijn.",
    ),
    (
        Error::UnsupportedKey,
        "De vault-sleutel moet een RSA-sleutel zijn.",
    ),
    (
        Error::KeyNotForEncryption,
        "De vault-sleutel is niet bedoeld voor versleuteling.",
    ),
    (
        Error::NoEncryptionKey,
        "De sleutelset bevat geen bruikbare sleutel voor versleuteling.",
    ),
    (Error::Crypto, "De kaart kon niet worden versleuteld."),
];

/// Brazilian Portuguese.
pub const PT_BR: Table = &[
    (
        Error::IncompleteNumber,
        "O número do cartão está incompleto.",
    ),
    (Error::InvalidNumber, "O número do cartão é inválido."),
    (
        Error::IncompleteExpiry,
        "A data de validade está incompleta.",
    ),
    (Error::InvalidExpiryMonth, "O mês de validade é inválido."),
    (Error::InvalidExpiryYear, "O ano de validade é inválido."),
    (
        Error::InvalidExpiryYearPast,
        "A data de validade já passou.",
    ),
    (
        Error::IncompleteCvc,
        "O código de segurança está incompleto.",
    ),
    (Error::InvalidCvc, "O código de segurança é inválido."),
    (Error::InvalidName, "O nome do titular é inválido."),
    (
        Error::InvalidKey,
        "A chave do cofre não é um JWK, JWKS ou PEM válido.",
    ),
    (
        Error::KeyTooSmall,
        "A chave do cofre deve ser uma chave RSA de pelo menos 2048 bits.",
    ),
    (
        Error::UnsupportedKey,
        "A chave do cofre deve ser uma chave RSA.",
    ),
    (
        Error::KeyNotForEncryption,
        "A chave do cofre não é uma chave de criptografia.",
    ),
    (
        Error::NoEncryptionKey,
        "O conjunto de chaves não tem nenhuma chave de criptografia utilizável.",
    ),
    (Error::Crypto, "Não foi possível criptografar o cartão."),
];

/// Polish.
pub const PL: Table = &[
    (Error::IncompleteNumber, "Numer karty jest niepełny."),
    (Error::InvalidNumber, "Numer karty jest nieprawidłowy."),
    (Error::IncompleteExpiry, "Data ważności jest niepełna."),
    (
        Error::InvalidExpiryMonth,
        "Miesiąc ważności jest nieprawidłowy.",
    ),
    (Error::InvalidExpiryYear, "Rok ważności jest nieprawidłowy."),
    (Error::InvalidExpiryYearPast, "Data ważności już minęła."),
    (Error::IncompleteCvc, "Kod zabezpieczający jest niepełny."),
    (Error::InvalidCvc, "Kod zabezpieczający jest nieprawidłowy."),
    (
        Error::InvalidName,
        "Imię i nazwisko posiadacza karty są nieprawidłowe.",
    ),
    (
        Error::InvalidKey,
        "Klucz sejfu nie jest prawidłowym kluczem JWK, JWKS ani PEM.",
    ),
    (
        Error::KeyTooSmall,
        "Klucz sejfu musi być kluczem RSA o długości co najmniej 2048 bitów.",
    ),
    (Error::UnsupportedKey, "Klucz sejfu musi być kluczem RSA."),
    (
        Error::KeyNotForEncryption,
        "Klucz sejfu nie służy do szyfrowania.",
    ),
    (
        Error::NoEncryptionKey,
        "Zestaw kluczy nie zawiera żadnego klucza szyfrowania, którego można użyć.",
    ),
    (Error::Crypto, "Nie udało się zaszyfrować danych karty."),
];

/// Swedish.
pub const SV: Table = &[
    (Error::IncompleteNumber, "Kortnumret är ofullständigt."),
    (Error::InvalidNumber, "Kortnumret är ogiltigt."),
    (Error::IncompleteExpiry, "Utgångsdatumet är ofullständigt."),
    (Error::InvalidExpiryMonth, "Utgångsmånaden är ogiltig."),
    (Error::InvalidExpiryYear, "Utgångsåret är ogiltigt."),
    (Error::InvalidExpiryYearPast, "Utgångsdatumet har passerat."),
    (Error::IncompleteCvc, "Säkerhetskoden är ofullständig."),
    (Error::InvalidCvc, "Säkerhetskoden är ogiltig."),
    (Error::InvalidName, "Kortinnehavarens namn är ogiltigt."),
    (
        Error::InvalidKey,
        "Valvnyckeln är inte en giltig JWK, JWKS eller PEM.",
    ),
    (
        Error::KeyTooSmall,
        "Valvnyckeln måste vara en RSA-nyckel på minst 2048 bitar.",
    ),
    (
        Error::UnsupportedKey,
        "Valvnyckeln måste vara en RSA-nyckel.",
    ),
    (
        Error::KeyNotForEncryption,
        "Valvnyckeln är inte avsedd för kryptering.",
    ),
    (
        Error::NoEncryptionKey,
        "Nyckeluppsättningen innehåller ingen användbar krypteringsnyckel.",
    ),
    (Error::Crypto, "Kortuppgifterna kunde inte krypteras."),
];

/// Japanese.
pub const JA: Table = &[
    (Error::IncompleteNumber, "カード番号が不完全です。"),
    (Error::InvalidNumber, "カード番号が正しくありません。"),
    (Error::IncompleteExpiry, "有効期限が不完全です。"),
    (
        Error::InvalidExpiryMonth,
        "有効期限の月が正しくありません。",
    ),
    (Error::InvalidExpiryYear, "有効期限の年が正しくありません。"),
    (Error::InvalidExpiryYearPast, "有効期限が過ぎています。"),
    (Error::IncompleteCvc, "セキュリティコードが不完全です。"),
    (Error::InvalidCvc, "セキュリティコードが正しくありません。"),
    (Error::InvalidName, "カード名義人の名前が正しくありません。"),
    (
        Error::InvalidKey,
        "ボールトの鍵が有効な JWK、JWKS、PEM のいずれでもありません。",
    ),
    (
        Error::KeyTooSmall,
        "ボールトの鍵は 2048 ビット以上の RSA 鍵である必要があります。",
    ),
    (
        Error::UnsupportedKey,
        "ボールトの鍵は RSA 鍵である必要があります。",
    ),
    (
        Error::KeyNotForEncryption,
        "ボールトの鍵は暗号化用ではありません。",
    ),
    (
        Error::NoEncryptionKey,
        "鍵セットに使用できる暗号化鍵がありません。",
    ),
    (Error::Crypto, "カード情報を暗号化できませんでした。"),
];

/// Simplified Chinese.
pub const ZH_HANS: Table = &[
    (Error::IncompleteNumber, "卡号不完整。"),
    (Error::InvalidNumber, "卡号无效。"),
    (Error::IncompleteExpiry, "有效期不完整。"),
    (Error::InvalidExpiryMonth, "有效期月份无效。"),
    (Error::InvalidExpiryYear, "有效期年份无效。"),
    (Error::InvalidExpiryYearPast, "卡片已过有效期。"),
    (Error::IncompleteCvc, "安全码不完整。"),
    (Error::InvalidCvc, "安全码无效。"),
    (Error::InvalidName, "持卡人姓名无效。"),
    (Error::InvalidKey, "保管库密钥不是有效的 JWK、JWKS 或 PEM。"),
    (
        Error::KeyTooSmall,
        "保管库密钥必须是至少 2048 位的 RSA 密钥。",
    ),
    (Error::UnsupportedKey, "保管库密钥必须是 RSA 密钥。"),
    (Error::KeyNotForEncryption, "保管库密钥不能用于加密。"),
    (Error::NoEncryptionKey, "密钥集中没有可用的加密密钥。"),
    (Error::Crypto, "无法加密卡片信息。"),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_language_has_every_error_once_and_no_two_errors_share_a_message() {
        for locale in Locale::ALL {
            let table = locale.table();
            assert_eq!(table.len(), Error::ALL.len(), "{}", locale.tag());
            for e in Error::ALL {
                let found: Vec<_> = table.iter().filter(|(x, _)| *x == e).collect();
                assert_eq!(found.len(), 1, "{} {e}", locale.tag());
                assert!(!found[0].1.trim().is_empty());
            }
            let distinct: HashSet<_> = table.iter().map(|(_, m)| *m).collect();
            assert_eq!(
                distinct.len(),
                table.len(),
                "{} repeats a message",
                locale.tag()
            );
            if locale != Locale::En {
                // Translated, not left in English.
                for (e, m) in table {
                    assert_ne!(*m, lookup(EN, *e), "{} {e}", locale.tag());
                }
            }
        }
    }

    #[test]
    fn tags_parse_and_negotiate() {
        for locale in Locale::ALL {
            assert_eq!(Locale::parse(locale.tag()), Some(locale));
        }
        assert_eq!(Locale::parse("DE-at"), Some(Locale::De));
        assert_eq!(Locale::parse("pt"), Some(Locale::PtBr));
        assert_eq!(Locale::parse("pt-PT"), Some(Locale::PtBr));
        assert_eq!(Locale::parse("zh"), Some(Locale::ZhHans));
        assert_eq!(Locale::parse("zh-CN"), Some(Locale::ZhHans));
        assert_eq!(Locale::parse("zh_Hans_SG"), Some(Locale::ZhHans));
        assert_eq!(Locale::parse("zh-TW"), None);
        assert_eq!(Locale::parse("zh-Hant"), None);
        assert_eq!(Locale::parse("tlh"), None);
        assert_eq!(Locale::parse(""), None);
        assert_eq!(Locale::negotiate(["zh-TW", "fr-CA", "de"]), Locale::Fr);
        assert_eq!(Locale::negotiate(["tlh", "xx"]), Locale::En);
        assert_eq!(Locale::negotiate([]), Locale::En);
        assert_eq!(
            Error::InvalidCvc.message_in(Locale::De),
            "Die Kartenprüfnummer ist ungültig."
        );
    }
}
