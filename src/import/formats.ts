// The tools `tidemark import` reads, apart from the converter, so the command line can offer them
// without loading it.
export const SOURCE_FORMATS = ['golang-migrate', 'dbmate', 'goose', 'flyway', 'node-pg-migrate'] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];
