/* Set-1 scan codes to characters: see scancode.h. */
#include "scancode.h"

/* Make codes 0x00-0x39, without and with Shift. */
static const char plain[0x3A] = "\0\0"
				"1234567890-="
				"\0\t"
				"qwertyuiop[]"
				"\0\0"
				"asdfghjkl;'`"
				"\0\\"
				"zxcvbnm,./"
				"\0*\0 ";
static const char shifted[0x3A] = "\0\0"
				  "!@#$%^&*()_+"
				  "\0\t"
				  "QWERTYUIOP{}"
				  "\0\0"
				  "ASDFGHJKL:\"~"
				  "\0|"
				  "ZXCVBNM<>?"
				  "\0*\0 ";

char scancode_char(uint8_t code, bool shift, bool caps)
{
	char c;

	if (code >= sizeof(plain))
		return 0;
	c = (shift ? shifted : plain)[code];
	if (caps && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		c ^= 0x20;
	return c;
}
