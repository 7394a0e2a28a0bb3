//! Masking what a processor answers, so that a processor that echoes the card cannot hand the
//! merchant the number the vault exists to keep from it.
//!
//! Masked, all digits but the last four replaced by `*`:
//! - any Luhn-valid run of 13 to 19 digits, written together or in groups separated by one
//!   space or hyphen (`4242 4242 4242 4242`);
//! - the forwarded number wherever it appears, even inside a longer run of digits.
//!
//! The forwarded CVC is masked whole where it stands alone (not inside a longer run of
//! digits): masking every `123` inside amounts and ids would garble the answer for nothing.

use cardseal::card::number::luhn;

const MIN: usize = 13;
const MAX: usize = 19;

/// Masks `text` in place.
pub fn mask(text: &mut [u8], number: Option<&str>, cvc: Option<&str>) {
    let number = number.map(str::as_bytes).filter(|n| !n.is_empty());
    let cvc = cvc.map(str::as_bytes).filter(|c| !c.is_empty());
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A group: digits, with single spaces or hyphens between them.
        let start = i;
        let mut positions = Vec::new();
        let mut j = i;
        while j < text.len() {
            if text[j].is_ascii_digit() {
                positions.push(j);
                j += 1;
            } else if matches!(text[j], b' ' | b'-')
                && text.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        let digits: Vec<u8> = positions.iter().map(|&p| text[p]).collect();
        if (MIN..=MAX).contains(&digits.len()) && luhn(&digits) {
            hide(text, &positions, 4);
        } else {
            // Each contiguous run of the group on its own.
            let mut k = start;
            while k < j {
                if !text[k].is_ascii_digit() {
                    k += 1;
                    continue;
                }
                let run_start = k;
                while k < j && text[k].is_ascii_digit() {
                    k += 1;
                }
                mask_run(text, run_start, k, number, cvc);
            }
        }
        i = j;
    }
}

fn mask_run(text: &mut [u8], start: usize, end: usize, number: Option<&[u8]>, cvc: Option<&[u8]>) {
    let len = end - start;
    if (MIN..=MAX).contains(&len) && luhn(&text[start..end]) {
        let positions: Vec<usize> = (start..end).collect();
        hide(text, &positions, 4);
        return;
    }
    if let Some(n) = number {
        let mut k = start;
        while k + n.len() <= end {
            if &text[k..k + n.len()] == n {
                let positions: Vec<usize> = (k..k + n.len()).collect();
                hide(text, &positions, 4);
                k += n.len();
            } else {
                k += 1;
            }
        }
    }
    if let Some(c) = cvc {
        if &text[start..end] == c {
            let positions: Vec<usize> = (start..end).collect();
            hide(text, &positions, 0);
        }
    }
}

/// Replaces the digits at `positions` by `*`, all but the last `keep`.
fn hide(text: &mut [u8], positions: &[usize], keep: usize) {
    for &p in &positions[..positions.len().saturating_sub(keep)] {
        text[p] = b'*';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(s: &str, number: Option<&str>, cvc: Option<&str>) -> String {
        let mut b = s.as_bytes().to_vec();
        mask(&mut b, number, cvc);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn card_numbers_and_the_cvc_are_masked() {
        assert_eq!(
            masked(
                r#"{"pan":"4242424242424242","cvc":"123","amount":1234}"#,
                None,
                Some("123")
            ),
            r#"{"pan":"************4242","cvc":"***","amount":1234}"#
        );
        assert_eq!(
            masked("card 4242 4242 4242 4242 ok", None, None),
            "card **** **** **** 4242 ok"
        );
        assert_eq!(
            masked("amex 3782-822463-10005.", None, None),
            "amex ****-******-*0005."
        );
        // Inside a longer run, only the forwarded number is found.
        assert_eq!(
            masked("id=9994242424242424242999", Some("4242424242424242"), None),
            "id=999************4242999"
        );
        // Not Luhn-valid, not the number: left alone; a CVC inside a number too.
        assert_eq!(
            masked("ref 4242424242424241 x1234", None, Some("123")),
            "ref 4242424242424241 x1234"
        );
        assert_eq!(masked("2026-12-02 12:00", None, None), "2026-12-02 12:00");
    }
}
