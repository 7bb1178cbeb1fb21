/**
 * Data that is awkward on the wire: line breaks of every kind, lines that look like fields or
 * comments, spaces, colons, non-ASCII text. Each adapter's framing test sends all of it through a
 * real EventSource, which must hand back each one as `asReceived` says.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
export const AWKWARD_DATA: readonly (readonly [name: string, data: string])[] = [
  ['plain text', 'hello'],
  ['the empty string', ''],
  ['LF', 'a\nb'],
  ['CRLF', 'a\r\nb'],
  ['a lone CR', 'a\rb'],
  ['CR CR LF', 'a\r\r\nb'],
  ['blank lines', 'a\n\n\nb'],
  ['leading and trailing line breaks', '\nmiddle\r\n'],
  ['only a line break', '\n'],
  ['only a CR', '\r'],
  ['emoji', 'party 🎉 thumbs 👍🏽 family 👨‍👩‍👧'],
  ['CJK', '漢字 かな カナ 한글'],
  ['a line that looks like an event field', 'event: x'],
  ['a line that looks like an id', 'id: 9'],
  ['fields after a line break', 'text\nevent: x\nid: 9\nretry: 1\n: comment\n\ndata: nested'],
  ['leading spaces', '  two spaces\n one space'],
  ['a leading colon', ':not a comment'],
  ['a NUL inside data', 'a\0b'],
  ['a BOM inside data', '\uFEFFafter a BOM'],
  ['a tab and trailing spaces', '\tindented  '],
  ['two lines', 'line one\nline two'],
  ['CRLF between words', 'windows\r\nline'],
  ['a lone CR between words', 'old mac\rline'],
  ['a trailing CR', 'ends with CR\r'],
  ['blank lines around and inside', '\n\nafter two blank lines\n\n\nand before two\n\n'],
  ['mixed breaks', 'a\r\n\rb\n\r\nc'],
  ['unicode', 'emoji 😀, CJK 中文, accents é, RTL שלום, a combining e\u0301'],
  ['a line that looks like a field', 'event: injected\nid: 666\nretry: 1\ndata: smuggled'],
  ['a line that looks like a comment', ': not a comment\n:also not'],
  ['a leading space', ' leading space kept'],
  ['only spaces', '   '],
  ['a line that is only a colon', ':'],
]

/** What a spec-following client makes of data: CRLF and a lone CR both become LF. */
export function asReceived(data: string): string {
  return data.replace(/\r\n|\r/g, '\n')
}
