/* A stand-in for bcryptprimitives.dll under wine 8 (Debian 12), which lacks it:
 * Rust's std imports ProcessPrng from it. Used only by the windows test stage
 * (installed into its private wine prefix); Windows has the real DLL. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
