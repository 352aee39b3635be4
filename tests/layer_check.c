/*
 * layer_check.c - an empty program that meson.build links with the whole
 * of one layer and only the layers below it, so that a call from that
 * layer to a layer above it fails the build with an undefined reference.
 */
int main(void)
{
	return 0;
}
