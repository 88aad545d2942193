// The languages typogram/texts.py has word lists for, as [code, name] pairs.

export const LANGUAGES = [
  ["en", "English"], ["es", "Español"], ["fr", "Français"], ["de", "Deutsch"], ["it", "Italiano"],
  ["pt", "Português"], ["nl", "Nederlands"], ["pl", "Polski"], ["ru", "Русский"], ["tr", "Türkçe"],
  ["sv", "Svenska"], ["fi", "Suomi"], ["cs", "Čeština"], ["uk", "Українська"], ["id", "Bahasa Indonesia"],
];
