/**
 * RFC 4180 CSV as HR systems export it: optional BOM, quoted fields with "" escapes and line
 * breaks, CRLF or LF, comma or semicolon (decided by the header line).
 */
export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export interface CsvRecord {
  line: number;
  values: Record<string, string>;
}

export function parseCsv(text: string): CsvRecord[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const headerEnd = body.search(/\r?\n|$/);
  const headerLine = body.slice(0, headerEnd);
  const delimiter = (headerLine.match(/;/g)?.length ?? 0) > (headerLine.match(/,/g)?.length ?? 0) ? ';' : ',';

  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quoted) {
      if (ch === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
    } else if (ch === delimiter) {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && body[i + 1] === '\n') i++;
      fields.push(field);
      rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      line++;
      rowLine = line;
    } else {
      field += ch;
    }
  }
  if (quoted) throw new CsvError('a quoted field is not closed', rowLine);
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    rows.push({ line: rowLine, fields });
  }

  const nonEmpty = rows.filter((r) => !(r.fields.length === 1 && r.fields[0]?.trim() === ''));
  const header = nonEmpty.shift();
  if (!header) return [];
  const names = header.fields.map((name) => name.trim());
  if (names.some((n) => n === '')) throw new CsvError('the header has an empty column name', header.line);
  return nonEmpty.map((row) => {
    if (row.fields.length !== names.length) {
      throw new CsvError(`expected ${names.length} fields (${names.join(delimiter)}), found ${row.fields.length}`, row.line);
    }
    const values: Record<string, string> = {};
    names.forEach((name, i) => {
      values[name] = row.fields[i] ?? '';
    });
    return { line: row.line, values };
  });
}
