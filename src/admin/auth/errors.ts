/** The admin's one error type: a status and words for the person, rendered by the admin's onError. */
export class AdminHttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 422 | 500 | 503,
    readonly title: string,
    readonly detail: string,
  ) {
    super(title);
    this.name = "AdminHttpError";
  }
}
