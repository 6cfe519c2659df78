// The test identities the OpenID Provider (op.mjs) knows, by login name; portal.mjs logs in
// with them. Shared so that both agree.

/** A birth date `years` full years (and a few months) before today, as YYYY-MM-DD. */
function bornYearsAgo(years) {
  const d = new Date();
  d.setUTCFullYear(d.getUTCFullYear() - years);
  d.setUTCDate(d.getUTCDate() - 100);
  return d.toISOString().slice(0, 10);
}

/**
 * Test identities, by login name. The BSNs pass the 11-test and are not real people's; the
 * others than the demo citizen are unknown to otv until they log in.
 */
export const ACCOUNTS = {
  // An adult managing their own profile: the demo citizen who says yes to everything and is
  // registered at the demo GP, pharmacy, hospital and lab (`otv serve --demo`).
  volwassene: { bsn: '900203638', birthdate: bornYearsAgo(40), name: 'Anna de Vries' },
  // A representative (DigiD Machtigen style): logs in as themself, acts for someone else.
  vertegenwoordiger: {
    bsn: '900100023',
    birthdate: bornYearsAgo(52),
    name: 'Bram Jansen',
    acting_for: '900100035',
  },
  // A child of 14: answers stay pending until a parent confirms.
  kind14: { bsn: '900100047', birthdate: bornYearsAgo(14), name: 'Sam Bakker' },
  // A parent of kind14.
  ouder: { bsn: '900100059', birthdate: bornYearsAgo(45), name: 'Eva Bakker' },
};
