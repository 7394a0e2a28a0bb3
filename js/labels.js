// The names of the hosted fields, by locale: the iframe's `title` (set by the merchant-side
// code) and the input's label inside the field document. A small table of its own, because
// the merchant-side code loads no wasm.

const KINDS = ['number', 'expiry', 'cvc', 'name', 'card'];
const TABLE = {
  en: ['Card number', 'Expiry date', 'Security code', 'Name on card', 'Card details'],
  de: ['Kartennummer', 'Ablaufdatum', 'Prüfnummer', 'Name auf der Karte', 'Kartendaten'],
  fr: ['Numéro de carte', "Date d'expiration", 'Code de sécurité', 'Nom sur la carte', 'Données de la carte'],
  es: ['Número de tarjeta', 'Fecha de caducidad', 'Código de seguridad', 'Nombre en la tarjeta', 'Datos de la tarjeta'],
  it: ['Numero della carta', 'Data di scadenza', 'Codice di sicurezza', 'Nome sulla carta', 'Dati della carta'],
  nl: ['Kaartnummer', 'Vervaldatum', 'Beveiligingscode', 'Naam op de kaart', 'Kaartgegevens'],
  'pt-BR': ['Número do cartão', 'Data de validade', 'Código de segurança', 'Nome no cartão', 'Dados do cartão'],
  pl: ['Numer karty', 'Data ważności', 'Kod zabezpieczający', 'Imię i nazwisko na karcie', 'Dane karty'],
  sv: ['Kortnummer', 'Utgångsdatum', 'Säkerhetskod', 'Namn på kortet', 'Kortuppgifter'],
  ja: ['カード番号', '有効期限', 'セキュリティコード', 'カード名義', 'カード情報'],
  'zh-Hans': ['卡号', '有效期', '安全码', '持卡人姓名', '银行卡信息'],
};

/** The name of a field of `kind` in `locale` (a supported tag; English otherwise). */
export function labelOf(kind, locale) {
  return (TABLE[locale] ?? TABLE.en)[KINDS.indexOf(kind)];
}
