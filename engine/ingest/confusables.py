"""Lookalike-character tables for :mod:`engine.ingest.fingerprint`.

Pure data, kept apart from the code so the lists can grow without touching the logic.
Entries were picked by hand from Unicode's confusables.txt (UTS #39), limited to characters
that NFKC leaves alone: anything NFKC already folds (fullwidth forms, mathematical
alphanumerics, ligatures, the ellipsis) needs no entry here. Values are always lower-case
ASCII, since the fold may run before ``str.casefold()``.
"""

# Letters from other scripts (and odd Latin letters) that render like a Latin letter.
# fingerprint.py applies these only where the script rules allow it, so genuine Russian,
# Greek, Armenian or Cherokee text is left as it is.
LETTERS: dict[str, str] = {
    # Cyrillic. Capitals whose lower case does not look Latin (В Н М Т К) are listed
    # because folding happens before casefold; see engine/fingerprint.py.
    "\u0430": "a",  # а CYRILLIC SMALL LETTER A
    "\u0435": "e",  # е CYRILLIC SMALL LETTER IE
    "\u043e": "o",  # о CYRILLIC SMALL LETTER O
    "\u0440": "p",  # р CYRILLIC SMALL LETTER ER
    "\u0441": "c",  # с CYRILLIC SMALL LETTER ES
    "\u0443": "y",  # у CYRILLIC SMALL LETTER U
    "\u0445": "x",  # х CYRILLIC SMALL LETTER HA
    "\u0456": "i",  # і CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0458": "j",  # ј CYRILLIC SMALL LETTER JE
    "\u0455": "s",  # ѕ CYRILLIC SMALL LETTER DZE
    "\u0501": "d",  # ԁ CYRILLIC SMALL LETTER KOMI DE
    "\u051b": "q",  # ԛ CYRILLIC SMALL LETTER QA
    "\u051d": "w",  # ԝ CYRILLIC SMALL LETTER WE
    "\u04cf": "l",  # ӏ CYRILLIC SMALL LETTER PALOCHKA
    "\u04bb": "h",  # һ CYRILLIC SMALL LETTER SHHA
    "\u04af": "y",  # ү CYRILLIC SMALL LETTER STRAIGHT U
    "\u0475": "v",  # ѵ CYRILLIC SMALL LETTER IZHITSA
    "\u0461": "w",  # ѡ CYRILLIC SMALL LETTER OMEGA
    "\u0410": "a",  # А CYRILLIC CAPITAL LETTER A
    "\u0412": "b",  # В CYRILLIC CAPITAL LETTER VE
    "\u0415": "e",  # Е CYRILLIC CAPITAL LETTER IE
    "\u041a": "k",  # К CYRILLIC CAPITAL LETTER KA
    "\u041c": "m",  # М CYRILLIC CAPITAL LETTER EM
    "\u041d": "h",  # Н CYRILLIC CAPITAL LETTER EN
    "\u041e": "o",  # О CYRILLIC CAPITAL LETTER O
    "\u0420": "p",  # Р CYRILLIC CAPITAL LETTER ER
    "\u0421": "c",  # С CYRILLIC CAPITAL LETTER ES
    "\u0422": "t",  # Т CYRILLIC CAPITAL LETTER TE
    "\u0425": "x",  # Х CYRILLIC CAPITAL LETTER HA
    "\u0423": "y",  # У CYRILLIC CAPITAL LETTER U
    "\u0406": "i",  # І CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0408": "j",  # Ј CYRILLIC CAPITAL LETTER JE
    "\u0405": "s",  # Ѕ CYRILLIC CAPITAL LETTER DZE
    "\u0500": "d",  # Ԁ CYRILLIC CAPITAL LETTER KOMI DE
    "\u051a": "q",  # Ԛ CYRILLIC CAPITAL LETTER QA
    "\u051c": "w",  # Ԝ CYRILLIC CAPITAL LETTER WE
    "\u04c0": "i",  # Ӏ CYRILLIC LETTER PALOCHKA
    "\u04ba": "h",  # Һ CYRILLIC CAPITAL LETTER SHHA
    "\u04ae": "y",  # Ү CYRILLIC CAPITAL LETTER STRAIGHT U
    "\u0474": "v",  # Ѵ CYRILLIC CAPITAL LETTER IZHITSA
    # Greek. GREEK LUNATE SIGMA SYMBOL is absent on purpose: NFKC turns it into final sigma,
    # which is listed instead.
    "\u03bf": "o",  # ο GREEK SMALL LETTER OMICRON
    "\u03b1": "a",  # α GREEK SMALL LETTER ALPHA
    "\u03bd": "v",  # ν GREEK SMALL LETTER NU
    "\u03c1": "p",  # ρ GREEK SMALL LETTER RHO
    "\u03c4": "t",  # τ GREEK SMALL LETTER TAU
    "\u03b9": "i",  # ι GREEK SMALL LETTER IOTA
    "\u03ba": "k",  # κ GREEK SMALL LETTER KAPPA
    "\u03c5": "u",  # υ GREEK SMALL LETTER UPSILON
    "\u03c7": "x",  # χ GREEK SMALL LETTER CHI
    "\u03c2": "c",  # ς GREEK SMALL LETTER FINAL SIGMA
    "\u03f3": "j",  # ϳ GREEK LETTER YOT
    "\u03b3": "y",  # γ GREEK SMALL LETTER GAMMA
    "\u03b7": "n",  # η GREEK SMALL LETTER ETA
    "\u0391": "a",  # Α GREEK CAPITAL LETTER ALPHA
    "\u0392": "b",  # Β GREEK CAPITAL LETTER BETA
    "\u0395": "e",  # Ε GREEK CAPITAL LETTER EPSILON
    "\u0396": "z",  # Ζ GREEK CAPITAL LETTER ZETA
    "\u0397": "h",  # Η GREEK CAPITAL LETTER ETA
    "\u0399": "i",  # Ι GREEK CAPITAL LETTER IOTA
    "\u039a": "k",  # Κ GREEK CAPITAL LETTER KAPPA
    "\u039c": "m",  # Μ GREEK CAPITAL LETTER MU
    "\u039d": "n",  # Ν GREEK CAPITAL LETTER NU
    "\u039f": "o",  # Ο GREEK CAPITAL LETTER OMICRON
    "\u03a1": "p",  # Ρ GREEK CAPITAL LETTER RHO
    "\u03a4": "t",  # Τ GREEK CAPITAL LETTER TAU
    "\u03a5": "y",  # Υ GREEK CAPITAL LETTER UPSILON
    "\u03a7": "x",  # Χ GREEK CAPITAL LETTER CHI
    "\u037f": "j",  # Ϳ GREEK CAPITAL LETTER YOT
    # Armenian.
    "\u0585": "o",  # օ ARMENIAN SMALL LETTER OH
    "\u0578": "n",  # ո ARMENIAN SMALL LETTER VO
    "\u057d": "u",  # ս ARMENIAN SMALL LETTER SEH
    "\u0570": "h",  # հ ARMENIAN SMALL LETTER HO
    "\u0566": "q",  # զ ARMENIAN SMALL LETTER ZA
    "\u0581": "g",  # ց ARMENIAN SMALL LETTER CO
    "\u0555": "o",  # Օ ARMENIAN CAPITAL LETTER OH
    "\u054d": "u",  # Ս ARMENIAN CAPITAL LETTER SEH
    "\u054f": "s",  # Տ ARMENIAN CAPITAL LETTER TIWN
    # Cherokee capitals. str.casefold() maps the Cherokee small letters onto these, and the
    # fold runs again after casefold, so the small letters need no entries of their own.
    "\u13aa": "a",  # Ꭺ CHEROKEE LETTER GO
    "\u13f4": "b",  # Ᏼ CHEROKEE LETTER YV
    "\u13df": "c",  # Ꮯ CHEROKEE LETTER TLI
    "\u13a0": "d",  # Ꭰ CHEROKEE LETTER A
    "\u13ac": "e",  # Ꭼ CHEROKEE LETTER GV
    "\u13c0": "g",  # Ꮐ CHEROKEE LETTER NAH
    "\u13bb": "h",  # Ꮋ CHEROKEE LETTER MI
    "\u13a5": "i",  # Ꭵ CHEROKEE LETTER V
    "\u13ab": "j",  # Ꭻ CHEROKEE LETTER GU
    "\u13e6": "k",  # Ꮶ CHEROKEE LETTER TSO
    "\u13de": "l",  # Ꮮ CHEROKEE LETTER TLE
    "\u13b7": "m",  # Ꮇ CHEROKEE LETTER LU
    "\u13e2": "p",  # Ꮲ CHEROKEE LETTER TLV
    "\u13d2": "r",  # Ꮢ CHEROKEE LETTER SV
    "\u13da": "s",  # Ꮪ CHEROKEE LETTER DU
    "\u13a2": "t",  # Ꭲ CHEROKEE LETTER I
    "\u13d9": "v",  # Ꮩ CHEROKEE LETTER DO
    "\u13b3": "w",  # Ꮃ CHEROKEE LETTER LA
    "\u13d4": "w",  # Ꮤ CHEROKEE LETTER TA
    "\u13c3": "z",  # Ꮓ CHEROKEE LETTER NO
    # Latin letters that NFKC leaves alone: small capitals, dotless i/j and IPA variants.
    # They are Latin already, so the script rules never hold them back.
    "\u1d00": "a",  # ᴀ LATIN LETTER SMALL CAPITAL A
    "\u0299": "b",  # ʙ LATIN LETTER SMALL CAPITAL B
    "\u1d04": "c",  # ᴄ LATIN LETTER SMALL CAPITAL C
    "\u1d05": "d",  # ᴅ LATIN LETTER SMALL CAPITAL D
    "\u1d07": "e",  # ᴇ LATIN LETTER SMALL CAPITAL E
    "\u0262": "g",  # ɢ LATIN LETTER SMALL CAPITAL G
    "\u029c": "h",  # ʜ LATIN LETTER SMALL CAPITAL H
    "\u026a": "i",  # ɪ LATIN LETTER SMALL CAPITAL I
    "\u1d0a": "j",  # ᴊ LATIN LETTER SMALL CAPITAL J
    "\u1d0b": "k",  # ᴋ LATIN LETTER SMALL CAPITAL K
    "\u029f": "l",  # ʟ LATIN LETTER SMALL CAPITAL L
    "\u1d0d": "m",  # ᴍ LATIN LETTER SMALL CAPITAL M
    "\u0274": "n",  # ɴ LATIN LETTER SMALL CAPITAL N
    "\u1d0f": "o",  # ᴏ LATIN LETTER SMALL CAPITAL O
    "\u1d18": "p",  # ᴘ LATIN LETTER SMALL CAPITAL P
    "\u0280": "r",  # ʀ LATIN LETTER SMALL CAPITAL R
    "\ua731": "s",  # ꜱ LATIN LETTER SMALL CAPITAL S
    "\u1d1b": "t",  # ᴛ LATIN LETTER SMALL CAPITAL T
    "\u1d1c": "u",  # ᴜ LATIN LETTER SMALL CAPITAL U
    "\u1d20": "v",  # ᴠ LATIN LETTER SMALL CAPITAL V
    "\u1d21": "w",  # ᴡ LATIN LETTER SMALL CAPITAL W
    "\u028f": "y",  # ʏ LATIN LETTER SMALL CAPITAL Y
    "\u1d22": "z",  # ᴢ LATIN LETTER SMALL CAPITAL Z
    "\u0131": "i",  # ı LATIN SMALL LETTER DOTLESS I
    "\u0237": "j",  # ȷ LATIN SMALL LETTER DOTLESS J
    "\u0251": "a",  # ɑ LATIN SMALL LETTER ALPHA
    "\u0261": "g",  # ɡ LATIN SMALL LETTER SCRIPT G
    "\u0269": "i",  # ɩ LATIN SMALL LETTER IOTA
}

# Punctuation lookalikes. Applied everywhere, whatever the script: a Russian em dash folded to
# '-' loses nothing a near-duplicate search cares about. Compatibility forms such as the
# fullwidth hyphen, the double prime or the non-breaking hyphen are left to NFKC, which runs first.
PUNCTUATION: dict[str, str] = {
    "\u2018": "'",  # ‘ LEFT SINGLE QUOTATION MARK
    "\u2019": "'",  # ’ RIGHT SINGLE QUOTATION MARK
    "\u201a": "'",  # ‚ SINGLE LOW-9 QUOTATION MARK
    "\u201b": "'",  # ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK
    "\u2032": "'",  # ′ PRIME
    "\u2035": "'",  # ‵ REVERSED PRIME
    "\u02bc": "'",  # ʼ MODIFIER LETTER APOSTROPHE
    "\u02bb": "'",  # ʻ MODIFIER LETTER TURNED COMMA
    "\u02b9": "'",  # ʹ MODIFIER LETTER PRIME
    "\u201c": "\"",  # “ LEFT DOUBLE QUOTATION MARK
    "\u201d": "\"",  # ” RIGHT DOUBLE QUOTATION MARK
    "\u201e": "\"",  # „ DOUBLE LOW-9 QUOTATION MARK
    "\u201f": "\"",  # ‟ DOUBLE HIGH-REVERSED-9 QUOTATION MARK
    "\u02ba": "\"",  # ʺ MODIFIER LETTER DOUBLE PRIME
    "\u2010": "-",  # ‐ HYPHEN
    "\u2012": "-",  # ‒ FIGURE DASH
    "\u2013": "-",  # – EN DASH
    "\u2014": "-",  # — EM DASH
    "\u2015": "-",  # ― HORIZONTAL BAR
    "\u2212": "-",  # − MINUS SIGN
    "\u2043": "-",  # ⁃ HYPHEN BULLET
    "\u02d7": "-",  # ˗ MODIFIER LETTER MINUS SIGN
    "\u2e3a": "-",  # ⸺ TWO-EM DASH
    "\u2e3b": "-",  # ⸻ THREE-EM DASH
    "\u01c3": "!",  # ǃ LATIN LETTER RETROFLEX CLICK
    "\u01c0": "|",  # ǀ LATIN LETTER DENTAL CLICK
    "\u2044": "/",  # ⁄ FRACTION SLASH
    "\u2215": "/",  # ∕ DIVISION SLASH
    "\u29f8": "/",  # ⧸ BIG SOLIDUS
    "\u2216": "\\",  # ∖ SET MINUS
    "\u29f5": "\\",  # ⧵ REVERSE SOLIDUS OPERATOR
    "\u02c2": "<",  # ˂ MODIFIER LETTER LEFT ARROWHEAD
    "\u02c3": ">",  # ˃ MODIFIER LETTER RIGHT ARROWHEAD
    "\u02c4": "^",  # ˄ MODIFIER LETTER UP ARROWHEAD
    "\u02c6": "^",  # ˆ MODIFIER LETTER CIRCUMFLEX ACCENT
    "\u0589": ":",  # ։ ARMENIAN FULL STOP
    "\u2236": ":",  # ∶ RATIO
    "\ua789": ":",  # ꞉ MODIFIER LETTER COLON
}
