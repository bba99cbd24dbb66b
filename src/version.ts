/** The program's version, shown by `firebreak --version` and in `/openapi.json`. */
export const VERSION = "0.1.0";
