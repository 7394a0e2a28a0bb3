//! Authorization. The built-in `test` processor decides by card number, as DESIGN.md lists.

use cardseal::card::Today;

/// The card-on-file interaction of a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// A one-off, customer-present charge (the default).
    OneTime,
    /// The first customer-present charge of a card saved for later customer-present use.
    SetupCofOnSession,
    /// The first charge of a recurring series.
    SetupCofRecurring,
    /// The first charge of a card saved for unscheduled merchant-initiated charges.
    SetupCofUnscheduled,
    /// A customer-present charge of a saved card.
    CofOnSession,
    /// A merchant-initiated charge of a recurring series: no CVC, the setup reference.
    CofRecurring,
    /// A merchant-initiated unscheduled charge: no CVC, the setup reference.
    CofUnscheduled,
}

impl Interaction {
    const ALL: [(Interaction, &'static str); 7] = [
        (Interaction::OneTime, "ONE_TIME"),
        (Interaction::SetupCofOnSession, "SETUP_COF_ONSESSION"),
        (Interaction::SetupCofRecurring, "SETUP_COF_RECURRING"),
        (Interaction::SetupCofUnscheduled, "SETUP_COF_UNSCHEDULED"),
        (Interaction::CofOnSession, "COF_ONSESSION"),
        (Interaction::CofRecurring, "COF_RECURRING"),
        (Interaction::CofUnscheduled, "COF_UNSCHEDULED"),
    ];

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(i, _)| *i)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(i, _)| *i == self)
            .map_or("ONE_TIME", |(_, n)| n)
    }

    /// A `SETUP_COF_*` charge, whose network transaction id later charges carry.
    pub fn is_setup(self) -> bool {
        matches!(
            self,
            Interaction::SetupCofOnSession
                | Interaction::SetupCofRecurring
                | Interaction::SetupCofUnscheduled
        )
    }

    /// Merchant-initiated: never carries a CVC, always the setup reference.
    pub fn is_merchant_initiated(self) -> bool {
        matches!(
            self,
            Interaction::CofRecurring | Interaction::CofUnscheduled
        )
    }
}

/// What is sent for authorization. No `Debug`: it holds the number and CVC.
pub struct Authorization<'a> {
    /// The card number.
    pub number: &'a str,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
    /// The CVC, if one is presented.
    pub cvc: Option<&'a str>,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: &'a str,
    /// The interaction type.
    pub interaction: Interaction,
    /// The setup charge's network transaction id, for card-on-file charges.
    pub reference: Option<&'a str>,
}

impl std::fmt::Debug for Authorization<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("interaction", &self.interaction)
            .finish_non_exhaustive()
    }
}

/// The processor's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Approved or declined.
    pub approved: bool,
    /// Why it was declined.
    pub decline_code: Option<&'static str>,
    /// The network's transaction id, on approval.
    pub network_transaction_id: Option<String>,
    /// Whether a presented CVC matched: `Some(true)`, `Some(false)`, or `None` if none was sent.
    pub cvc_check: Option<bool>,
}

/// Authorizes charges.
pub trait Processor: Send + Sync + std::fmt::Debug {
    /// Decides one authorization at `now` (Unix seconds).
    fn authorize(&self, auth: &Authorization<'_>, now: i64) -> Decision;
    /// Captures `amount` (at most what was authorized) of the authorization the network knows
    /// as `network_transaction_id`, releasing the rest. The vault has checked the amount and
    /// the authorization's expiry; a processor that still refuses answers `false`.
    fn capture(&self, network_transaction_id: &str, amount: i64, now: i64) -> bool;
    /// Refunds `amount` (at most what is left of the capture) of a captured charge.
    fn refund(&self, network_transaction_id: &str, amount: i64, now: i64) -> bool;
}

/// The built-in test processor.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestProcessor;

impl Processor for TestProcessor {
    fn authorize(&self, auth: &Authorization<'_>, now: i64) -> Decision {
        let today = Today::from_unix(now);
        let expired = (auth.exp_year, auth.exp_month) < (today.year(), today.month());
        let declined = match auth.number {
            "4000000000000002" => Some("generic_decline"),
            "4000000000009995" => Some("insufficient_funds"),
            "4000000000000069" => Some("expired_card"),
            "4000000000000127" => Some("incorrect_cvc"),
            _ if expired => Some("expired_card"),
            _ => None,
        };
        let cvc_check = auth.cvc.map(|_| declined != Some("incorrect_cvc"));
        Decision {
            approved: declined.is_none(),
            decline_code: declined,
            // Card networks use 15 digits (Visa's transaction identifier).
            network_transaction_id: declined.is_none().then(network_transaction_id),
            cvc_check,
        }
    }

    /// The test network captures and refunds whatever the vault has checked.
    fn capture(&self, network_transaction_id: &str, amount: i64, _now: i64) -> bool {
        !network_transaction_id.is_empty() && amount > 0
    }

    fn refund(&self, network_transaction_id: &str, amount: i64, _now: i64) -> bool {
        !network_transaction_id.is_empty() && amount > 0
    }
}

fn network_transaction_id() -> String {
    crate::ids::random_bytes::<15>()
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_by_number() {
        let p = TestProcessor;
        let now = 1_763_860_000; // November 2025
        let auth = |number, exp_year| Authorization {
            number,
            exp_month: 12,
            exp_year,
            cvc: Some("123"),
            amount: 100,
            currency: "eur",
            interaction: Interaction::OneTime,
            reference: None,
        };
        assert!(p.authorize(&auth("4242424242424242", 2030), now).approved);
        assert_eq!(
            p.authorize(&auth("4000000000009995", 2030), now)
                .decline_code,
            Some("insufficient_funds")
        );
        assert_eq!(
            p.authorize(&auth("4242424242424242", 2024), now)
                .decline_code,
            Some("expired_card")
        );
        assert_eq!(
            p.authorize(&auth("4000000000000127", 2030), now).cvc_check,
            Some(false)
        );
        assert_eq!(
            Interaction::parse("COF_RECURRING"),
            Some(Interaction::CofRecurring)
        );
        assert_eq!(Interaction::CofRecurring.as_str(), "COF_RECURRING");
    }
}
