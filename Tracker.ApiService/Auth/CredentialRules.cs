namespace Tracker.ApiService.Auth;

/// <summary>
/// Validation of registration and login bodies. Written out rather than as attributes: the rules (trimmed
/// length, character classes, one message per rule saying what is allowed) read better as code, and every
/// broken rule of a request is reported at once.
/// </summary>
public static class CredentialRules
{
    public const int NameMaxLength = 100;
    public const int PasswordMinLength = 8;
    public const int PasswordMaxLength = 128;

    public static Dictionary<string, string[]> ValidateRegistration(RegisterRequest request)
    {
        var errors = new Dictionary<string, string[]>();
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > NameMaxLength)
        {
            errors["name"] = [$"Name is required: 1 to {NameMaxLength} characters (leading and trailing spaces are ignored)."];
        }

        if (request.Email is null || !EmailAddresses.IsValid(request.Email.Trim()))
        {
            errors["email"] = [$"Email must be a valid address (like name@example.com) of at most {EmailAddresses.MaxLength} characters."];
        }

        var passwordErrors = ValidatePassword(request.Password);
        if (passwordErrors.Count > 0)
        {
            errors["password"] = [.. passwordErrors];
        }

        return errors;
    }

    public static Dictionary<string, string[]> ValidateLogin(LoginRequest request)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Email))
        {
            errors["email"] = ["Email is required."];
        }

        if (string.IsNullOrEmpty(request.Password))
        {
            errors["password"] = ["Password is required."];
        }

        return errors;
    }

    private static List<string> ValidatePassword(string? password)
    {
        if (password is null || password.Length < PasswordMinLength || password.Length > PasswordMaxLength)
        {
            return [$"Password must be {PasswordMinLength} to {PasswordMaxLength} characters long."];
        }

        var problems = new List<string>();
        if (!password.Any(char.IsLower))
        {
            problems.Add("Password must contain a lower-case letter.");
        }

        if (!password.Any(char.IsUpper))
        {
            problems.Add("Password must contain an upper-case letter.");
        }

        if (!password.Any(char.IsDigit))
        {
            problems.Add("Password must contain a digit.");
        }

        return problems;
    }
}
